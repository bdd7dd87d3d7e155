//! The online Drain pass: a fixed-depth parse tree over masked tokens.

use foldhash::HashMap;

use crate::config::Config;
use crate::header::strip_header;
use crate::mask::{ANNOTATION, Piece, WILDCARD, tokenize};
use crate::template::{Template, TemplateId, params_of};

/// Interned token; [`WILD`] is `<*>`.
pub(crate) type Tok = u32;
pub(crate) const WILD: Tok = 0;

/// Token interning, so templates compare as integers.
#[derive(Debug, Clone)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, Tok>,
    texts: Vec<Box<str>>,
    /// What each token's text says, worked out once when it is interned.
    facts: Vec<Facts>,
    /// `key=<*>` for a `key=value` token, else the token itself.
    general: Vec<Tok>,
    /// `word` for an annotated `word (<*>)` token, else the token itself.
    base: Vec<Tok>,
    /// Scratch for building a token's text, reused.
    scratch: String,
}

impl Interner {
    fn new() -> Self {
        let mut interner = Self {
            ids: HashMap::default(),
            texts: Vec::new(),
            facts: Vec::new(),
            general: Vec::new(),
            base: Vec::new(),
            scratch: String::new(),
        };
        interner.intern(WILDCARD);
        interner
    }

    pub(crate) fn intern(&mut self, text: &str) -> Tok {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        self.insert(text)
    }

    #[cold]
    fn insert(&mut self, text: &str) -> Tok {
        let id = Tok::try_from(self.texts.len()).unwrap_or(Tok::MAX);
        self.ids.insert(text.into(), id);
        self.texts.push(text.into());
        self.facts.push(Facts::of(id, text));
        self.general.push(id);
        self.base.push(id);
        if let Some(key) = key_of(text) {
            let general = self.intern(&format!("{key}{WILDCARD}"));
            self.general[id as usize] = general;
        }
        if let Some(base) = text.strip_suffix(ANNOTATION) {
            let base = self.intern(base);
            self.base[id as usize] = base;
        }
        id
    }

    /// `word (<*>)` for `word`: the token with a parenthesised note folded in.
    fn annotated(&mut self, tok: Tok) -> Tok {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        text.push_str(self.text(tok));
        text.push_str(ANNOTATION);
        let annotated = self.intern(&text);
        self.scratch = text;
        annotated
    }

    pub(crate) fn text(&self, tok: Tok) -> &str {
        self.texts.get(tok as usize).map_or(WILDCARD, |t| t)
    }

    fn route_key(&self, tok: Tok) -> Tok {
        if self.facts.get(tok as usize).is_none_or(|f| f.variable) {
            WILD
        } else {
            tok
        }
    }

    /// The most specific token covering both `a` and `b`: `a` when equal,
    /// `key=<*>` for two values of one key, `word (<*>)` for a word with and
    /// without its annotation, else `<*>`.
    pub(crate) fn generalize(&self, a: Tok, b: Tok) -> Tok {
        if a == b {
            return a;
        }
        let (ga, gb) = (self.general[a as usize], self.general[b as usize]);
        if ga == gb {
            return ga;
        }
        let (ba, bb) = (self.base[a as usize], self.base[b as usize]);
        if ba == b || ba == bb && ba != a {
            a
        } else if bb == a {
            b
        } else {
            WILD
        }
    }

    /// Whether template token `t` already covers line token `l`.
    fn covers(&self, t: Tok, l: Tok) -> bool {
        t == l || (t != WILD && self.generalize(t, l) == t)
    }

    /// Whether a token could be a constant word hidden by a wildcard:
    /// letters, at most two digits, not starting with one, no `<*>`.
    pub(crate) fn is_word(&self, tok: Tok) -> bool {
        self.facts.get(tok as usize).is_some_and(|f| f.word)
    }

    /// Whether the token at `pos` is the value of a key: a `key=value` or
    /// `key:value` token, the word after `key:`, `key=` or `=`, or the word
    /// after a noun that names a value (`user root`, `device sda`).
    pub(crate) fn is_labelled(&self, tokens: &[Tok], pos: usize) -> bool {
        let own = tokens
            .get(pos)
            .is_some_and(|&t| self.general[t as usize] != t);
        let after_key = pos
            .checked_sub(1)
            .and_then(|p| tokens.get(p))
            .is_some_and(|&t| self.facts.get(t as usize).is_some_and(|f| f.key));
        own || after_key
    }
}

/// What a token's text says about it, for the tree and the refine pass.
#[derive(Debug, Clone, Copy)]
struct Facts {
    /// It contains a digit or a `<*>`: such tokens are routed through the
    /// tree's wildcard child, as in Drain.
    variable: bool,
    /// It could be a constant word hidden by a wildcard (see
    /// [`Interner::is_word`]).
    word: bool,
    /// It names the value after it: ends with `:` or `=`, or is one of
    /// [`LABEL_NOUNS`] (see [`Interner::is_labelled`]).
    key: bool,
}

impl Facts {
    fn of(id: Tok, text: &str) -> Self {
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        let wild = text.contains(WILDCARD);
        Self {
            variable: wild || digits > 0,
            word: id != WILD
                && !wild
                && !text.starts_with(|c: char| c.is_ascii_digit())
                && digits <= 2
                && text.bytes().any(|b| b.is_ascii_alphabetic()),
            key: text.ends_with([':', '='])
                || LABEL_NOUNS.iter().any(|n| n.eq_ignore_ascii_case(text)),
        }
    }
}

/// Nouns whose next word is the value they name, in any log format.
const LABEL_NOUNS: &[&str] = &[
    "user",
    "username",
    "account",
    "host",
    "hostname",
    "node",
    "file",
    "filename",
    "device",
    "interface",
    "uid",
    "gid",
    "pid",
    "process",
];

/// The `key=` or `key:` of a `key=value` or `key:value` token whose value
/// is not already `<*>`.
fn key_of(text: &str) -> Option<&str> {
    let sep = text.find(['=', ':'])?;
    let (key, value) = (&text[..sep], &text[sep + 1..]);
    let identifier = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let value_ok = !value.is_empty() && value != WILDCARD && !value.starts_with(['/', ':', '=']);
    (identifier && value_ok).then_some(&text[..=sep])
}

#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<Tok, Node>,
    clusters: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub(crate) tokens: Vec<Tok>,
    pub(crate) count: u64,
}

/// Online template miner: each [`add`](Miner::add) places one line in the
/// best matching template, generalising it, or starts a new template.
///
/// Template ids are stable: a template keeps its id while it generalises.
///
/// ```
/// use warden_logmine::Miner;
///
/// let mut miner = Miner::default();
/// let a = miner.add("Connected to 10.0.0.1 in 12 ms");
/// let b = miner.add("Connected to 10.0.0.7 in 3 ms");
/// let c = miner.add("Disk /dev/sda1 is full");
/// assert_eq!(a, b);
/// assert_ne!(a, c);
/// assert_eq!(miner.template(a).unwrap().text, "Connected to <*> in <*>");
/// ```
///
/// Streaming a large input: memory follows the number of templates and
/// distinct tokens, not of lines, and [`templates`](Miner::templates) is a
/// snapshot that can be taken at any point.
///
/// ```
/// use std::io::BufRead;
/// use warden_logmine::Miner;
///
/// let input = "job 1 done in 5 ms\njob 2 done in 7 ms\ndisk sda1 full\n".repeat(1000);
/// let mut miner = Miner::default();
/// for line in std::io::Cursor::new(input).lines() {
///     miner.add(&line?);
/// }
/// let templates = miner.templates();
/// assert_eq!(templates.len(), 2);
/// assert_eq!(templates[0].text, "job <*> done in <*>");
/// assert_eq!(templates[0].count, 2000);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Miner {
    config: Config,
    interner: Interner,
    /// First tree level: token count.
    roots: HashMap<usize, Node>,
    clusters: Vec<Cluster>,
    lines: usize,
    /// Scratch for the masked text of one token, reused across lines.
    word: String,
    /// Scratch for one line's tokens, reused across lines.
    line: Vec<Tok>,
}

impl Default for Miner {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Miner {
    /// A miner with `config`; out-of-range values are clamped (see [`Config`]).
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config: config.clamped(),
            interner: Interner::new(),
            roots: HashMap::default(),
            clusters: Vec::new(),
            lines: 0,
            word: String::new(),
            line: Vec::new(),
        }
    }

    /// The config in use, after clamping.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds one raw log line and returns the id of its template.
    ///
    /// Costs no allocation once the miner has seen the line's tokens and
    /// template; memory grows with distinct tokens and templates, never
    /// with the number of lines.
    pub fn add(&mut self, line: &str) -> TemplateId {
        let mut tokens = std::mem::take(&mut self.line);
        self.tokenize_into(line, &mut tokens);
        let index = self.add_tokens(&tokens);
        self.line = tokens;
        TemplateId::from_index(index)
    }

    /// Number of lines added so far.
    #[must_use]
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The template with `id`, or `None` if this miner never made it.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> Option<Template> {
        let cluster = self.clusters.get(id.index())?;
        Some(self.make_template(id, &cluster.tokens, cluster.count))
    }

    /// All templates, by id.
    #[must_use]
    pub fn templates(&self) -> Vec<Template> {
        self.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| self.make_template(TemplateId::from_index(i), &c.tokens, c.count))
            .collect()
    }

    pub(crate) fn make_template(&self, id: TemplateId, tokens: &[Tok], count: u64) -> Template {
        let text = tokens
            .iter()
            .map(|&t| self.interner.text(t))
            .collect::<Vec<_>>()
            .join(" ");
        Template {
            id,
            text,
            count,
            params: params_of(tokens),
            rare: count <= self.config.rare_limit(self.lines),
        }
    }

    pub(crate) fn interner(&self) -> &Interner {
        &self.interner
    }

    pub(crate) fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// Replaces `out` by the header-stripped, masked, interned tokens of a
    /// raw line.
    pub(crate) fn tokenize_into(&mut self, line: &str, out: &mut Vec<Tok>) {
        out.clear();
        let content = if self.config.strip_headers {
            strip_header(line)
        } else {
            line
        };
        let interner = &mut self.interner;
        let mut word = std::mem::take(&mut self.word);
        tokenize(
            content,
            &self.config.masking,
            &mut word,
            |piece| match piece {
                Piece::Token(text) => out.push(interner.intern(text)),
                Piece::Annotation => match out.last_mut() {
                    Some(last) if !interner.text(*last).contains(WILDCARD) => {
                        *last = interner.annotated(*last);
                    }
                    _ => out.push(WILD),
                },
            },
        );
        self.word = word;
    }

    /// Places interned tokens; returns the cluster index.
    pub(crate) fn add_tokens(&mut self, tokens: &[Tok]) -> usize {
        self.lines += 1;
        if let Some(index) = self.search(tokens) {
            let interner = &self.interner;
            let cluster = &mut self.clusters[index];
            for (t, &l) in cluster.tokens.iter_mut().zip(tokens) {
                *t = interner.generalize(*t, l);
            }
            cluster.count += 1;
            return index;
        }
        let index = self.clusters.len();
        self.insert(tokens, index);
        self.clusters.push(Cluster {
            tokens: tokens.to_vec(),
            count: 1,
        });
        index
    }

    fn prefix_len(&self, tokens: &[Tok]) -> usize {
        (self.config.depth - 2).min(tokens.len())
    }

    fn search(&self, tokens: &[Tok]) -> Option<usize> {
        let mut node = self.roots.get(&tokens.len())?;
        for &tok in &tokens[..self.prefix_len(tokens)] {
            let key = self.interner.route_key(tok);
            node = node
                .children
                .get(&key)
                .or_else(|| node.children.get(&WILD))?;
        }
        self.best_match(&node.clusters, tokens)
    }

    /// Drain's fast match: highest similarity, ties to the more general
    /// template, at or above the threshold.
    fn best_match(&self, candidates: &[usize], tokens: &[Tok]) -> Option<usize> {
        let mut best: Option<(f64, usize, usize)> = None;
        for &index in candidates {
            let (sim, params) = self.similarity(&self.clusters[index].tokens, tokens);
            let better = best.is_none_or(|(s, p, _)| sim > s || (sim == s && params > p));
            if better {
                best = Some((sim, params, index));
            }
        }
        best.filter(|&(sim, _, _)| sim >= self.config.similarity)
            .map(|(_, _, index)| index)
    }

    fn insert(&mut self, tokens: &[Tok], index: usize) {
        let prefix = self.prefix_len(tokens);
        let max_children = self.config.max_children;
        let keys: Vec<Tok> = tokens[..prefix]
            .iter()
            .map(|&t| self.interner.route_key(t))
            .collect();
        let mut node = self.roots.entry(tokens.len()).or_default();
        for key in keys {
            let key = if node.children.contains_key(&key) {
                key
            } else if key == WILD {
                WILD
            } else if node.children.contains_key(&WILD) {
                if node.children.len() < max_children {
                    key
                } else {
                    WILD
                }
            } else if node.children.len() + 1 < max_children {
                key
            } else {
                WILD
            };
            node = node.children.entry(key).or_default();
        }
        node.clusters.push(index);
    }

    /// Share of positions where the template covers the line token; a
    /// template wildcard facing a constant counts as a miss, so general
    /// templates do not attract everything. Returns the similarity and the
    /// template's wildcard count.
    fn similarity(&self, template: &[Tok], tokens: &[Tok]) -> (f64, usize) {
        if template.is_empty() {
            return (1.0, 0);
        }
        let mut same = 0usize;
        let mut params = 0usize;
        for (&t, &l) in template.iter().zip(tokens) {
            if t == WILD {
                params += 1;
            }
            if self.interner.covers(t, l) {
                same += 1;
            }
        }
        #[allow(clippy::cast_precision_loss, reason = "token counts are small")]
        let sim = same as f64 / template.len() as f64;
        (sim, params)
    }
}
