//! `${VAR}` substitution in the config file's text, done before TOML parsing
//! (CONTRACT §1). It owns the reference syntax and its errors only; where
//! variables come from is the caller's lookup function.
//!
//! Rules, kept deliberately simple:
//! - `${NAME}`, NAME of ASCII letters, digits and `_` (not starting with a
//!   digit), is replaced by the variable's value, verbatim: a value meant for
//!   a TOML string must not contain `"` or `\`.
//! - A variable that is not set is an error naming it and its line.
//! - A `${` that is not a well-formed reference is an error (a typo such as
//!   `${ADMIN TOKEN}` should not reach the server as literal text).
//! - Lines whose first non-blank character is `#` (TOML comments) are left
//!   alone, so commented-out settings need no variables. A comment after a
//!   value on the same line is substituted like the rest of that line.
//! - Values are not searched again for references.

use super::error::ConfigErrorKind;

/// Returns `text` with every `${NAME}` replaced by `lookup(NAME)`.
pub(super) fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigErrorKind> {
    let mut output = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = index + 1;
        if line.trim_start().starts_with('#') {
            output.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after_open = &rest[start + 2..];
            let name_len = after_open
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after_open.len());
            let name = &after_open[..name_len];
            let well_formed = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && after_open[name_len..].starts_with('}');
            if !well_formed {
                let column = line[..line.len() - rest.len() + start].chars().count() + 1;
                return Err(ConfigErrorKind::MalformedEnvReference {
                    line: line_number,
                    column,
                });
            }
            let value = lookup(name).ok_or_else(|| ConfigErrorKind::MissingEnvVar {
                name: name.to_owned(),
                line: line_number,
            })?;
            output.push_str(&value);
            rest = &after_open[name_len + 1..];
        }
        output.push_str(rest);
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::substitute;
    use crate::config::error::ConfigErrorKind;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t0k".to_owned()),
            "PORT" => Some("4001".to_owned()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("${TOKEN}".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn replaces_every_reference() {
        let text = "a = \"${TOKEN}\"\nlisten = \"0.0.0.0:${PORT}\" # ${PORT}\nb = \"${TOKEN}${EMPTY}${TOKEN}\"\n";
        assert_eq!(
            substitute(text, &lookup).unwrap(),
            "a = \"t0k\"\nlisten = \"0.0.0.0:4001\" # 4001\nb = \"t0kt0k\"\n"
        );
    }

    #[test]
    fn leaves_comment_lines_and_plain_dollars_alone() {
        let text = "  # admin_token = \"${UNSET}\"\nprice = \"$5 {x} $\"";
        assert_eq!(substitute(text, &lookup).unwrap(), text);
    }

    #[test]
    fn does_not_substitute_inside_values() {
        assert_eq!(
            substitute("x = \"${NESTED}\"", &lookup).unwrap(),
            "x = \"${TOKEN}\""
        );
    }

    #[test]
    fn missing_variable_names_it_and_its_line() {
        let error = substitute("a = 1\n\nb = \"${NOPE}\"\n", &lookup).unwrap_err();
        assert!(matches!(
            &error,
            ConfigErrorKind::MissingEnvVar { name, line: 3 } if name == "NOPE"
        ));
        assert_eq!(
            error.to_string(),
            "environment variable NOPE is not set (used at line 3)"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        for (text, column) in [
            ("a = \"${ADMIN TOKEN}\"", 6),
            ("a = \"${}\"", 6),
            ("é = \"${1X}\"", 6),
            ("a = \"${OPEN", 6),
        ] {
            let error = substitute(text, &lookup).unwrap_err();
            assert!(
                matches!(error, ConfigErrorKind::MalformedEnvReference { line: 1, column: c } if c == column),
                "{text}: {error:?}"
            );
        }
    }
}
