//! Text that goes to a chat: control characters dropped, clipped to the
//! platform's limits, and escaped so that text from outside (alert
//! annotations, arguments, a model's words) cannot become a link, a
//! mention or markup.

/// Drop control characters other than newline and tab.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// At most `max` characters of `s` (on a character boundary), ending in
/// `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` for Slack `mrkdwn`: `&`, `<` and `>` become entities (as Slack
/// documents), so no `<https://…|link>`, `<@U…>` or `<!channel>` can be
/// formed; control characters are dropped; the result has at most `max`
/// characters and never ends inside an entity.
pub(crate) fn mrkdwn(s: &str, max: usize) -> String {
    escape_within(s, max, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    })
}

/// `s` for Slack `plain_text`: control characters dropped, clipped.
pub(crate) fn plain(s: &str, max: usize) -> String {
    clip(&clean(s), max)
}

/// `s` for Teams markdown (Adaptive Card text, message text): the one
/// construct that can hide where a click goes, `[text](url)`, is broken
/// with a zero-width space between `]` and `(`, whether or not the client
/// honours backslash escapes; `<` and `>` become entities so no `<at>`
/// mention or HTML is formed; control characters are dropped.
pub(crate) fn teams(s: &str, max: usize) -> String {
    escape_within(s, max, |c| match c {
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        ']' => Some("]\u{200b}"),
        _ => None,
    })
}

fn escape_within(s: &str, max: usize, esc: impl Fn(char) -> Option<&'static str>) -> String {
    let kept = || {
        s.chars()
            .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
    };
    let piece = |c: char| esc(c).map_or_else(|| c.to_string(), str::to_string);
    let full: String = kept().map(piece).collect();
    if full.chars().count() <= max {
        return full;
    }
    // Whole pieces only, so an entity is never cut in half.
    let mut out = String::new();
    let mut used = 0usize;
    for c in kept() {
        let p = piece(c);
        let n = p.chars().count();
        if used + n > max.saturating_sub(1) {
            break;
        }
        out.push_str(&p);
        used += n;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_escapes_what_slack_would_read_as_links_and_mentions() {
        let hostile = "<!channel> & <https://evil.example|click here> <@U123>";
        let out = mrkdwn(hostile, 3000);
        assert_eq!(
            out,
            "&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt; &lt;@U123&gt;"
        );
        assert!(!out.contains('<') && !out.contains('>'));
    }

    #[test]
    fn mrkdwn_clips_without_cutting_an_entity_and_drops_controls() {
        let out = mrkdwn(&"<".repeat(100), 20);
        assert!(out.chars().count() <= 20, "{out}");
        assert!(out.ends_with('…'), "{out}");
        assert_eq!(out.trim_end_matches('…').replace("&lt;", ""), "");
        assert_eq!(mrkdwn("a\u{1b}[31mb\nc", 100), "a[31mb\nc");
        assert_eq!(mrkdwn("short", 5), "short");
        assert_eq!(mrkdwn("toolong", 5), "tool…");
    }

    #[test]
    fn teams_text_cannot_form_a_markdown_link_or_a_mention() {
        let out = teams("[click](https://evil.example) <at>Everyone</at>", 1000);
        assert!(!out.contains("]("), "{out}");
        assert!(!out.contains("<at>"), "{out}");
        assert!(out.contains("https://evil.example"), "{out}");
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("ééééé", 5), "ééééé");
        assert_eq!(clip("éééééé", 5), "éééé…");
    }
}
