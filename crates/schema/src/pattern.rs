//! The topic pattern language: parsing a pattern once, matching topics
//! against it structurally, and capturing variable values.
//!
//! Grammar (decided here, within CONTRACT §4):
//! - a pattern is split into segments at `:` and matches the WHOLE topic;
//! - a segment is exactly `{name}` (a variable; `name` is ASCII letters,
//!   digits and `_`), or literal text, or — only as the last segment — literal
//!   text followed by a final `*`, e.g. `project:*`, `user-*` or `*`;
//! - `{name}` matches exactly one non-empty segment (no `:`);
//! - the final `*` matches one or more remaining characters, colons included
//!   (`project:*` matches `project:1` and `project:1:x`, not `project:`);
//! - `{` or `}` anywhere else, a `*` anywhere but at the very end, a variable
//!   named twice, or an empty pattern is an error.
//!
//! Whether a captured value satisfies its variable's rules is not this
//! module's business: see [`crate::variable`].

use std::ops::Range;

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    source: String,
    /// The segments before the wildcard segment (all of them when there is none).
    segments: Vec<Segment>,
    /// With a final `*`: the literal text before it in the last segment.
    wildcard_prefix: Option<String>,
    /// Variable names in order of appearance; a variable's index is its position here.
    vars: Vec<String>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    /// The next variable: the n-th `Var` segment is `Pattern::vars[n]`.
    Var,
}

impl Pattern {
    /// Parses `source`, or says what is wrong with it (without repeating it).
    pub(crate) fn parse(source: &str) -> Result<Pattern, String> {
        if source.is_empty() {
            return Err("the pattern is empty".to_owned());
        }
        let parts: Vec<&str> = source.split(':').collect();
        let mut pattern = Pattern {
            source: source.to_owned(),
            segments: Vec::with_capacity(parts.len()),
            wildcard_prefix: None,
            vars: Vec::new(),
        };
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if let Some(star) = part.find('*') {
                if !last || star + 1 != part.len() {
                    return Err(format!(
                        "segment \"{part}\": `*` is only allowed at the very end of a pattern"
                    ));
                }
                let prefix = &part[..star];
                check_literal(prefix)?;
                pattern.wildcard_prefix = Some(prefix.to_owned());
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(format!(
                        "segment \"{part}\": a variable name is ASCII letters, digits and `_`"
                    ));
                }
                if pattern.vars.iter().any(|v| v == name) {
                    return Err(format!("variable \"{name}\" appears twice"));
                }
                pattern.segments.push(Segment::Var);
                pattern.vars.push(name.to_owned());
            } else {
                check_literal(part)?;
                pattern.segments.push(Segment::Literal((*part).to_owned()));
            }
        }
        Ok(pattern)
    }

    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The variable names, in order of appearance (their index order).
    pub(crate) fn vars(&self) -> &[String] {
        &self.vars
    }

    /// The index of variable `name`.
    pub(crate) fn var_index(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v == name)
    }

    /// Whether `topic` has this pattern's shape. On a match, `spans` holds
    /// the byte range of each variable's value in `topic`, by variable index;
    /// on no match its content is unspecified.
    pub(crate) fn matches(&self, topic: &str, spans: &mut Vec<Range<usize>>) -> bool {
        spans.clear();
        let mut rest = topic;
        let mut offset = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            let last = self.wildcard_prefix.is_none() && i + 1 == self.segments.len();
            let part = if last {
                if rest.contains(':') {
                    return false;
                }
                rest
            } else {
                match rest.find(':') {
                    Some(end) => &rest[..end],
                    None => return false,
                }
            };
            match segment {
                Segment::Literal(text) if text != part => return false,
                Segment::Literal(_) => {}
                Segment::Var if part.is_empty() => return false,
                // Pushed in order of appearance, which is variable index order.
                Segment::Var => spans.push(offset..offset + part.len()),
            }
            let consumed = (part.len() + 1).min(rest.len());
            rest = &rest[consumed..];
            offset += consumed;
        }
        match &self.wildcard_prefix {
            None => true,
            Some(prefix) => rest.len() > prefix.len() && rest.starts_with(prefix.as_str()),
        }
    }
}

/// Literal text may not contain braces: they are almost surely a mistyped variable.
fn check_literal(text: &str) -> Result<(), String> {
    if text.contains(['{', '}']) {
        Err(format!(
            "segment \"{text}\": `{{` and `}}` may only wrap a whole segment, as in `{{name}}`"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures(pattern: &str, topic: &str) -> Option<Vec<String>> {
        let p = Pattern::parse(pattern).unwrap();
        let mut spans = Vec::new();
        p.matches(topic, &mut spans)
            .then(|| spans.into_iter().map(|s| topic[s].to_owned()).collect())
    }

    #[test]
    fn literal_patterns_match_exactly() {
        assert_eq!(captures("lobby", "lobby"), Some(vec![]));
        assert_eq!(captures("room:lobby", "room:lobby"), Some(vec![]));
        assert_eq!(captures("room:lobby", "room:lobby:x"), None);
        assert_eq!(captures("room:lobby", "room"), None);
        assert_eq!(captures("room", "room:lobby"), None);
        assert_eq!(captures("a::b", "a::b"), Some(vec![]));
    }

    #[test]
    fn variables_capture_one_non_empty_segment() {
        assert_eq!(
            captures("{resource}:{id}", "project:42"),
            Some(vec!["project".into(), "42".into()])
        );
        assert_eq!(
            captures("user:{userId}:notifications", "user:u1:notifications"),
            Some(vec!["u1".into()])
        );
        assert_eq!(captures("{resource}:{id}", "project:42:x"), None);
        assert_eq!(captures("{resource}:{id}", "project:"), None);
        assert_eq!(captures("{resource}:{id}", ":42"), None);
        assert_eq!(captures("user:{id}:n", "user::n"), None);
        assert_eq!(captures("{a}", "x:y"), None);
    }

    #[test]
    fn final_star_matches_one_or_more_characters_colons_included() {
        assert_eq!(captures("project:*", "project:1"), Some(vec![]));
        assert_eq!(captures("project:*", "project:1:x"), Some(vec![]));
        assert_eq!(captures("project:*", "project:"), None);
        assert_eq!(captures("project:*", "project"), None);
        assert_eq!(captures("project:*", "projectx:1"), None);
        assert_eq!(captures("*", "anything:at:all"), Some(vec![]));
        assert_eq!(captures("*", ""), None);
        assert_eq!(captures("user-*", "user-1:x"), Some(vec![]));
        assert_eq!(captures("user-*", "user-"), None);
        assert_eq!(
            captures("{org}:user-*", "acme:user-1"),
            Some(vec!["acme".into()])
        );
        assert_eq!(captures("{org}:*", "acme"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "a*:b",
            "*:b",
            "a:*b",
            "**",
            "a:{b",
            "a:b}",
            "x{id}",
            "{}",
            "{a-b}",
            "{id}:{id}",
            "{id}*",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(
            Pattern::parse("{id}:{id}").unwrap_err(),
            "variable \"id\" appears twice"
        );
    }

    #[test]
    fn vars_are_indexed_in_order() {
        let p = Pattern::parse("{a}:x:{b}").unwrap();
        assert_eq!(p.vars(), ["a", "b"]);
        assert_eq!(p.var_index("b"), Some(1));
        assert_eq!(p.var_index("c"), None);
        assert_eq!(p.source(), "{a}:x:{b}");
    }

    /// Property: the matcher agrees with a regex translation of the grammar on
    /// many generated patterns and topics (a small deterministic generator,
    /// so the test needs no extra dependency and never flakes).
    #[test]
    fn matcher_agrees_with_a_regex_model() {
        let mut rng = Lcg(0x5eed);
        let alphabet = ["a", "b", "ab", "", "-"];
        for _ in 0..2000 {
            // A random valid pattern of 1..=4 segments.
            let n = 1 + rng.below(4);
            let mut segments = Vec::new();
            for i in 0..n {
                let seg = match rng.below(4) {
                    0 => format!("{{v{i}}}"),
                    1 if i + 1 == n => format!("{}*", alphabet[rng.below(alphabet.len())]),
                    _ => alphabet[rng.below(alphabet.len())].to_owned(),
                };
                segments.push(seg);
            }
            let source = segments.join(":");
            if source.is_empty() {
                continue; // the one invalid pattern the generator can produce
            }
            let pattern = Pattern::parse(&source).unwrap();
            let model = regex::Regex::new(&model_regex(&segments)).unwrap();
            for _ in 0..20 {
                // Random topics biased towards the pattern's own shape.
                let len = rng.below(6);
                let topic: String = (0..len)
                    .map(|_| ["a", "b", ":", "-", "ab"][rng.below(5)])
                    .collect();
                let mut spans = Vec::new();
                let ours = pattern.matches(&topic, &mut spans);
                let theirs = model.captures(&topic);
                assert_eq!(ours, theirs.is_some(), "{source:?} vs {topic:?}");
                if let Some(caps) = theirs {
                    let want: Vec<&str> =
                        caps.iter().skip(1).map(|c| c.unwrap().as_str()).collect();
                    let got: Vec<&str> = spans.iter().map(|s| &topic[s.clone()]).collect();
                    assert_eq!(got, want, "{source:?} vs {topic:?}");
                }
            }
        }
    }

    fn model_regex(segments: &[String]) -> String {
        let parts: Vec<String> = segments
            .iter()
            .map(|s| {
                if s.starts_with('{') {
                    "([^:]+)".to_owned()
                } else if let Some(prefix) = s.strip_suffix('*') {
                    format!("{}.+", regex::escape(prefix))
                } else {
                    regex::escape(s)
                }
            })
            .collect();
        format!("^{}$", parts.join(":"))
    }

    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }
}
