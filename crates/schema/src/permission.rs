//! Permission templates (`permissions.join` / `permissions.send`) and the
//! grant check.
//!
//! A template is text where `{var}` stands for the value of a variable of
//! the channel's pattern; a template naming a variable the pattern lacks is
//! a schema error. After expansion, a client *holds* a permission when one of
//! its grants (the permission list from auth):
//! - equals it exactly, or
//! - is a wildcard grant: `*` alone (covers every permission), or ending in
//!   `:*` with the `*` a whole last segment; it then covers every permission
//!   that starts with the text before the `*` and has at least one more
//!   character (`read:project:*` covers `read:project:42` and
//!   `read:project:42:x`, not `read:project:`).
//!
//! Any other `*` is plain text: `read:proj*` only matches `read:proj*`.
//! A list of templates is satisfied by ANY one of them; an empty list by
//! every client. Variable values cannot smuggle wildcards in: a value is one
//! segment, and a `*` in it only ever matches a grant literally.

use crate::pattern::Pattern;

/// One compiled template.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    /// A variable index of the channel's pattern.
    Var(usize),
}

impl Template {
    fn compile(source: &str, pattern: &Pattern) -> Result<Template, String> {
        if source.is_empty() {
            return Err("a permission may not be empty".to_owned());
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("unmatched `}}` in permission \"{source}\""));
            }
            let Some(len) = rest[open + 1..].find(['{', '}']) else {
                return Err(format!("unmatched `{{` in permission \"{source}\""));
            };
            let close = open + 1 + len;
            if !rest[close..].starts_with('}') {
                return Err(format!("unmatched `{{` in permission \"{source}\""));
            }
            let name = &rest[open + 1..close];
            let index = pattern.var_index(name).ok_or_else(|| {
                format!("permission \"{source}\" uses variable \"{name}\", which the pattern lacks")
            })?;
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            parts.push(Part::Var(index));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    fn expand_into<'v>(&self, value: &impl Fn(usize) -> &'v str, out: &mut String) {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(index) => out.push_str(value(*index)),
            }
        }
    }
}

/// The compiled templates of one action (join or send) of one channel.
#[derive(Debug, Clone, Default)]
pub(crate) struct Permissions {
    any_of: Vec<Template>,
}

impl Permissions {
    /// Compiles `templates` against `pattern`; on error, the index of the
    /// offending template and what is wrong.
    pub(crate) fn compile(
        templates: &[String],
        pattern: &Pattern,
    ) -> Result<Permissions, (usize, String)> {
        let any_of = templates
            .iter()
            .enumerate()
            .map(|(i, t)| Template::compile(t, pattern).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Permissions { any_of })
    }

    /// Whether a client with `grants` may act, `value(i)` giving the value of
    /// the pattern's variable `i` in the topic at hand.
    pub(crate) fn allow<'v, S: AsRef<str>>(
        &self,
        value: impl Fn(usize) -> &'v str,
        grants: &[S],
    ) -> bool {
        if self.any_of.is_empty() {
            return true;
        }
        let mut permission = String::new();
        self.any_of.iter().any(|template| {
            template.expand_into(&value, &mut permission);
            grants.iter().any(|g| covers(g.as_ref(), &permission))
        })
    }
}

/// Whether `grant` covers `permission` (see the module docs).
pub(crate) fn covers(grant: &str, permission: &str) -> bool {
    if grant == permission {
        return true;
    }
    let Some(prefix) = grant.strip_suffix('*') else {
        return false;
    };
    (prefix.is_empty() || prefix.ends_with(':'))
        && permission.len() > prefix.len()
        && permission.starts_with(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_exactly_or_by_a_final_wildcard_segment() {
        assert!(covers("read:project:42", "read:project:42"));
        assert!(covers("read:project:*", "read:project:42"));
        assert!(covers("read:project:*", "read:project:42:x"));
        assert!(!covers("read:project:*", "read:project:"));
        assert!(!covers("read:project:*", "read:projects:42"));
        assert!(!covers("read:project:*", "write:project:42"));
        assert!(covers("*", "anything:at:all"));
        assert!(!covers("*", ""));
        assert!(!covers("read:proj*", "read:project"));
        assert!(covers("read:proj*", "read:proj*"));
        assert!(!covers("read:project:42", "read:project:*"));
    }

    fn perms(pattern: &str, templates: &[&str]) -> (Pattern, Permissions) {
        let pattern = Pattern::parse(pattern).unwrap();
        let templates: Vec<String> = templates.iter().map(|t| (*t).to_owned()).collect();
        let perms = Permissions::compile(&templates, &pattern).unwrap();
        (pattern, perms)
    }

    #[test]
    fn templates_expand_variables_and_any_one_suffices() {
        let (_, p) = perms("{resource}:{id}", &["admin", "read:{resource}:{id}"]);
        let values = ["project", "42"];
        let value = |i: usize| values[i];
        assert!(p.allow(value, &["read:project:42"]));
        assert!(p.allow(value, &["admin"]));
        assert!(p.allow(value, &["x", "read:project:*"]));
        assert!(!p.allow(value, &["read:project:43"]));
        assert!(!p.allow(value, &[] as &[&str]));
    }

    #[test]
    fn no_templates_allow_everyone() {
        let (_, p) = perms("lobby", &[]);
        assert!(p.allow(|_| "", &[] as &[String]));
    }

    #[test]
    fn adjacent_variables_and_text() {
        let (_, p) = perms("{a}:{b}", &["x{a}{b}y"]);
        let values = ["1", "2"];
        assert!(p.allow(|i| values[i], &["x12y"]));
    }

    #[test]
    fn bad_templates_are_refused() {
        let pattern = Pattern::parse("{resource}:{id}").unwrap();
        for (bad, why) in [
            ("read:{user}", "variable \"user\""),
            ("read:{id", "unmatched `{`"),
            ("read:{{id}}", "unmatched `{`"),
            ("read:id}", "unmatched `}`"),
            ("", "empty"),
        ] {
            let err =
                Permissions::compile(&["ok".to_owned(), bad.to_owned()], &pattern).unwrap_err();
            assert_eq!(err.0, 1);
            assert!(err.1.contains(why), "{bad:?}: {}", err.1);
        }
    }
}
