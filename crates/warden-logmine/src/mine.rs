//! One-shot mining: the online pass, then refinement with every line known.

use foldhash::HashMap;

use crate::config::Config;
use crate::miner::{Interner, Miner, Tok, WILD};
use crate::template::{Mining, Template, TemplateId, params_of};

/// A wildcard position whose values are at most this many distinct words is
/// a candidate for splitting: a template's constants vary little, a
/// parameter's values usually vary a lot.
const SPLIT_MAX_DISTINCT: usize = 4;

/// Mines templates from `lines` in one go and assigns each line its final
/// template.
///
/// Runs the online [`Miner`] over all lines, then (with
/// [`Config::refine`]) merges templates that differ only in parameters —
/// including parameters that span several tokens — and splits templates
/// whose wildcard hides a few recurring words (at most 4 distinct; a word
/// seen once counts only when its line also differs in another word, and
/// the value of a key — `user=root`, `state: RUNNING`, `user cyrus` — is
/// never split on). Ids are dense and follow the order of each template's
/// first line, so the result is deterministic.
///
/// ```
/// use warden_logmine::{Config, mine};
///
/// let lines = [
///     "Accepted password for root from 10.0.0.1 port 22 ssh2",
///     "Accepted password for admin from 10.0.0.9 port 2222 ssh2",
///     "Connection closed by 10.0.0.1 [preauth]",
/// ];
/// let mining = mine(&lines, &Config::default());
/// assert_eq!(mining.templates.len(), 2);
/// assert_eq!(mining.assignments[0], mining.assignments[1]);
/// assert_eq!(
///     mining.templates[0].text,
///     "Accepted password for <*> from <*> port <*> ssh2"
/// );
/// ```
#[must_use]
pub fn mine<S: AsRef<str>>(lines: &[S], config: &Config) -> Mining {
    let mut miner = Miner::new(config.clone());
    let mut line_tokens = Lines::with_capacity(lines.len());
    let mut cluster_of = Vec::with_capacity(lines.len());
    let mut tokens = Vec::new();
    for line in lines {
        miner.tokenize_into(line.as_ref(), &mut tokens);
        cluster_of.push(miner.add_tokens(&tokens));
        line_tokens.push(&tokens);
    }
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); miner.clusters().len()];
    for (line, &cluster) in cluster_of.iter().enumerate() {
        groups[cluster].push(line);
    }
    let groups: Vec<Group> = if miner.config().refine {
        let split: Vec<Vec<usize>> = groups
            .into_iter()
            .flat_map(|g| split_group(g, &line_tokens, miner.interner()))
            .collect();
        merge_groups(split, &line_tokens, miner.interner())
    } else {
        groups
            .into_iter()
            .map(|lines| Group {
                template: agreement(&lines, &line_tokens, miner.interner()),
                lines,
            })
            .collect()
    };
    finish(&miner, groups, lines.len())
}

/// Every line's tokens in one buffer: two allocations for all lines.
struct Lines {
    tokens: Vec<Tok>,
    ends: Vec<usize>,
}

impl Lines {
    fn with_capacity(lines: usize) -> Self {
        Self {
            tokens: Vec::with_capacity(lines * 16),
            ends: Vec::with_capacity(lines),
        }
    }

    fn push(&mut self, tokens: &[Tok]) {
        self.tokens.extend_from_slice(tokens);
        self.ends.push(self.tokens.len());
    }
}

impl std::ops::Index<usize> for Lines {
    type Output = [Tok];

    fn index(&self, line: usize) -> &[Tok] {
        let start = line.checked_sub(1).map_or(0, |l| self.ends[l]);
        &self.tokens[start..self.ends[line]]
    }
}

/// Lines sharing one template.
struct Group {
    lines: Vec<usize>,
    template: Vec<Tok>,
}

/// Per position: the shared token, or `<*>` where lines disagree.
fn agreement(lines: &[usize], line_tokens: &Lines, interner: &Interner) -> Vec<Tok> {
    let Some((&first, rest)) = lines.split_first() else {
        return Vec::new();
    };
    let mut template = line_tokens[first].to_vec();
    for &line in rest {
        for (t, &l) in template.iter_mut().zip(&line_tokens[line]) {
            *t = interner.generalize(*t, l);
        }
    }
    template
}

/// Splits a same-length group on a wildcard position that holds a few
/// recurring words (`stored as bytes` / `stored as values`).
///
/// Never on the value of a key (`user=root`, `state: RUNNING`): a key
/// says that what follows is data. A word seen once counts only when its
/// line also has, elsewhere, a word no other line of the group has there.
/// Each call costs O(lines x width) with hashing; a split recurses into
/// smaller groups only.
fn split_group(lines: Vec<usize>, line_tokens: &Lines, interner: &Interner) -> Vec<Vec<usize>> {
    let Some(&first) = lines.first() else {
        return vec![lines];
    };
    if lines.len() < 2 {
        return vec![lines];
    }
    let width = line_tokens[first].len();
    // (position, token) -> lines with that token there; built only when a
    // word seen once needs it, as most groups have no candidate position.
    let mut seen: Option<HashMap<(usize, Tok), usize>> = None;
    for pos in 0..width {
        // The distinct words at `pos` and on how many lines each is.
        let mut counts: Vec<(Tok, usize)> = Vec::new();
        let mut candidate = true;
        for &line in &lines {
            let tok = line_tokens[line][pos];
            if !interner.is_word(tok) || interner.is_labelled(&line_tokens[line], pos) {
                candidate = false;
                break;
            }
            if let Some((_, count)) = counts.iter_mut().find(|(t, _)| *t == tok) {
                *count += 1;
            } else if counts.len() == SPLIT_MAX_DISTINCT {
                candidate = false;
                break;
            } else {
                counts.push((tok, 1));
            }
        }
        if !candidate || counts.len() < 2 {
            continue;
        }
        let supported = counts.iter().all(|&(tok, count)| {
            if count >= 2 {
                return true;
            }
            let seen = seen.get_or_insert_with(|| positions(&lines, line_tokens));
            // Whether a line has a word at a position that no other line has.
            let unique_word = |line: usize| {
                line_tokens[line]
                    .iter()
                    .enumerate()
                    .any(|(q, &t)| q != pos && interner.is_word(t) && seen.get(&(q, t)) == Some(&1))
            };
            lines
                .iter()
                .any(|&l| line_tokens[l][pos] == tok && unique_word(l))
        });
        if !supported {
            continue;
        }
        let mut parts: Vec<(Tok, Vec<usize>)> =
            counts.iter().map(|&(t, _)| (t, Vec::new())).collect();
        for &line in &lines {
            let tok = line_tokens[line][pos];
            if let Some((_, part)) = parts.iter_mut().find(|(t, _)| *t == tok) {
                part.push(line);
            }
        }
        return parts
            .into_iter()
            .flat_map(|(_, part)| split_group(part, line_tokens, interner))
            .collect();
    }
    vec![lines]
}

/// For each (position, token), on how many of `lines` it stands there.
fn positions(lines: &[usize], line_tokens: &Lines) -> HashMap<(usize, Tok), usize> {
    let mut seen: HashMap<(usize, Tok), usize> = HashMap::default();
    for &line in lines {
        for (pos, &tok) in line_tokens[line].iter().enumerate() {
            *seen.entry((pos, tok)).or_default() += 1;
        }
    }
    seen
}

/// Merges groups whose templates have the same constant tokens in the same
/// order, whatever the number and place of their parameters.
fn merge_groups(groups: Vec<Vec<usize>>, line_tokens: &Lines, interner: &Interner) -> Vec<Group> {
    let mut by_skeleton: HashMap<Vec<Tok>, usize> = HashMap::default();
    let mut merged: Vec<Vec<Group>> = Vec::new();
    for lines in groups {
        let template = agreement(&lines, line_tokens, interner);
        let skeleton = skeleton_of(&template);
        let group = Group { lines, template };
        match by_skeleton.get(&skeleton) {
            Some(&i) => merged[i].push(group),
            None => {
                by_skeleton.insert(skeleton, merged.len());
                merged.push(vec![group]);
            }
        }
    }
    merged.into_iter().map(combine).collect()
}

/// One group from several with the same skeleton: the gap before each
/// constant keeps its wildcard count when all members agree, else holds one.
fn combine(mut members: Vec<Group>) -> Group {
    if members.len() == 1
        && let Some(group) = members.pop()
    {
        return group;
    }
    let skeleton: Vec<Tok> = members
        .first()
        .map(|g| skeleton_of(&g.template))
        .unwrap_or_default();
    let gaps: Vec<Vec<usize>> = members
        .iter()
        .map(|g| gaps_of(&dedup(&g.template)))
        .collect();
    let mut template = Vec::new();
    for j in 0..=skeleton.len() {
        let counts = gaps.iter().map(|g| g.get(j).copied().unwrap_or(0));
        let first = gaps.first().and_then(|g| g.get(j)).copied().unwrap_or(0);
        let wilds = if counts.clone().all(|c| c == first) {
            first
        } else {
            usize::from(counts.max().unwrap_or(0) > 0)
        };
        template.extend(std::iter::repeat_n(WILD, wilds));
        template.extend(skeleton.get(j));
    }
    let mut lines: Vec<usize> = members.into_iter().flat_map(|g| g.lines).collect();
    lines.sort_unstable();
    Group { lines, template }
}

/// A template without repeats of a constant (`blk_<*> blk_<*> blk_<*>`
/// is a list of one kind of item, whatever its length).
fn dedup(template: &[Tok]) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(template.len());
    for &t in template {
        if t == WILD || out.last() != Some(&t) {
            out.push(t);
        }
    }
    out
}

/// The constants of a template, in order, without repeats.
fn skeleton_of(template: &[Tok]) -> Vec<Tok> {
    dedup(template).into_iter().filter(|&t| t != WILD).collect()
}

/// Wildcards before each constant of a template, and after the last.
fn gaps_of(template: &[Tok]) -> Vec<usize> {
    let mut gaps = vec![0];
    for &t in template {
        if t == WILD {
            if let Some(last) = gaps.last_mut() {
                *last += 1;
            }
        } else {
            gaps.push(0);
        }
    }
    gaps
}

fn finish(miner: &Miner, mut groups: Vec<Group>, lines: usize) -> Mining {
    groups.retain(|g| !g.lines.is_empty());
    groups.sort_by_key(|g| g.lines.first().copied().unwrap_or(usize::MAX));
    let limit = miner.config().rare_limit(lines);
    let mut assignments = vec![TemplateId(0); lines];
    let mut templates = Vec::with_capacity(groups.len());
    for (index, group) in groups.iter().enumerate() {
        let id = TemplateId::from_index(index);
        for &line in &group.lines {
            assignments[line] = id;
        }
        let count = group.lines.len() as u64;
        let text = group
            .template
            .iter()
            .map(|&t| miner.interner().text(t))
            .collect::<Vec<_>>()
            .join(" ");
        templates.push(Template {
            id,
            text,
            count,
            params: params_of(&group.template),
            rare: count <= limit,
        });
    }
    Mining {
        templates,
        assignments,
    }
}
