//! Takes the TLS parameters out of a connection string and leaves the rest
//! byte for byte, so tokio-postgres' own parser still reads every other
//! parameter (and rejects what it does not know) exactly as before.
//!
//! Both lexers follow tokio-postgres 0.7's parser rather than libpq's, since
//! that parser reads whatever is left: where they cannot make sense of the
//! text they stop extracting and hand it over unchanged, to fail there.

use std::borrow::Cow;

/// A connection string split in two.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Split {
    /// The connection string without the extracted parameters.
    pub rest: String,
    /// The extracted parameters, decoded, in the order given.
    pub taken: Vec<(String, String)>,
}

/// Splits `url` (a `postgres://` URL or `key=value` pairs) into the
/// parameters `wanted` names and the rest.
pub(super) fn split(url: &str, wanted: impl Fn(&str) -> bool) -> Split {
    for scheme in ["postgres://", "postgresql://"] {
        if let Some(after_scheme) = url.strip_prefix(scheme) {
            return split_url(scheme, after_scheme, wanted);
        }
    }
    split_key_value(url, wanted)
}

/// `postgres://user:password@host:port/dbname?key=value&…`: parameters live
/// in the query, which (as tokio-postgres reads it) begins at the first `?`
/// after the first `@`, so a password may hold a `?`.
fn split_url(scheme: &str, after_scheme: &str, wanted: impl Fn(&str) -> bool) -> Split {
    let credentials_end = after_scheme.find('@').map_or(0, |at| at + 1);
    let Some(query_start) = after_scheme[credentials_end..]
        .find('?')
        .map(|at| credentials_end + at)
    else {
        return Split {
            rest: format!("{scheme}{after_scheme}"),
            taken: Vec::new(),
        };
    };
    let mut query = &after_scheme[query_start + 1..];
    let mut kept: Vec<&str> = Vec::new();
    let mut taken = Vec::new();
    while !query.is_empty() {
        let Some(equals) = query.find('=') else {
            kept.push(query);
            break;
        };
        let after_equals = &query[equals + 1..];
        let (value, next) = after_equals.split_once('&').unwrap_or((after_equals, ""));
        let pair = &query[..equals + 1 + value.len()];
        match (decode(&query[..equals]), decode(value)) {
            (Some(key), Some(value)) if wanted(&key) => {
                taken.push((key.into_owned(), value.into_owned()));
            }
            _ => kept.push(pair),
        }
        query = next;
    }
    let mut rest = format!("{scheme}{}", &after_scheme[..query_start]);
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Split { rest, taken }
}

fn decode(text: &str) -> Option<Cow<'_, str>> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
}

/// `key=value key='quoted value'…`.
fn split_key_value(text: &str, wanted: impl Fn(&str) -> bool) -> Split {
    let mut lexer = Lexer { text, at: 0 };
    let mut kept: Vec<&str> = Vec::new();
    let mut taken = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.at;
        match lexer.parameter() {
            Some((key, value)) if wanted(key) => taken.push((key.to_owned(), value)),
            Some(_) => kept.push(&text[start..lexer.at]),
            None => {
                kept.push(&text[start..]);
                break;
            }
        }
    }
    // Parameters need no separator after a quoted value, but one never hurts.
    let rest = kept
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Split { rest, taken }
}

struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// The next `key = value`; None at the end, or where tokio-postgres
    /// would stop or fail (it then sees the text from here on).
    fn parameter(&mut self) -> Option<(&'a str, String)> {
        let start = self.at;
        while self.peek().is_some_and(|c| !c.is_whitespace() && c != '=') {
            self.bump();
        }
        let key = &self.text[start..self.at];
        if key.is_empty() {
            return None;
        }
        self.skip_whitespace();
        if self.bump() != Some('=') {
            return None;
        }
        self.skip_whitespace();
        let value = if self.peek() == Some('\'') {
            self.bump();
            self.quoted_value()?
        } else {
            self.simple_value()?
        };
        Some((key, value))
    }

    fn quoted_value(&mut self) -> Option<String> {
        let mut value = String::new();
        loop {
            match self.bump()? {
                '\'' => return Some(value),
                '\\' => value.push(self.bump()?),
                c => value.push(c),
            }
        }
    }

    fn simple_value(&mut self) -> Option<String> {
        let mut value = String::new();
        while let Some(c) = self.peek().filter(|c| !c.is_whitespace()) {
            self.bump();
            if c == '\\' {
                value.extend(self.bump());
            } else {
                value.push(c);
            }
        }
        (!value.is_empty()).then_some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(key: &str) -> bool {
        key.starts_with("ssl")
    }

    fn taken(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn url_parameters_are_taken_from_the_query_and_the_rest_kept_verbatim() {
        let split = split(
            "postgres://u:p%40ss@db.example:6543/app?application_name=a%20b&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca%20dir%2Fca.pem&connect_timeout=5",
            ssl,
        );
        assert_eq!(
            split.rest,
            "postgres://u:p%40ss@db.example:6543/app?application_name=a%20b&connect_timeout=5"
        );
        assert_eq!(
            split.taken,
            taken(&[
                ("sslmode", "verify-full"),
                ("sslrootcert", "/tmp/ca dir/ca.pem")
            ])
        );
    }

    #[test]
    fn a_url_left_without_parameters_loses_its_question_mark() {
        let split = split("postgresql://h/db?sslmode=require", ssl);
        assert_eq!(split.rest, "postgresql://h/db");
        assert_eq!(split.taken, taken(&[("sslmode", "require")]));
    }

    #[test]
    fn a_question_mark_in_the_password_does_not_start_the_query() {
        let split = split("postgres://u:a?sslmode=x@h/db?sslmode=disable", ssl);
        assert_eq!(split.rest, "postgres://u:a?sslmode=x@h/db");
        assert_eq!(split.taken, taken(&[("sslmode", "disable")]));
    }

    #[test]
    fn a_url_without_query_is_unchanged() {
        let split = split("postgres://h:5432/db", ssl);
        assert_eq!(split.rest, "postgres://h:5432/db");
        assert!(split.taken.is_empty());
    }

    #[test]
    fn key_value_pairs_keep_quoting_and_escapes_of_the_rest() {
        let split = split(
            r"host=h  sslmode = verify-ca sslrootcert='/tmp/my \'ca\'.pem' password='a b'dbname=x\ y",
            ssl,
        );
        assert_eq!(split.rest, r"host=h password='a b' dbname=x\ y");
        assert_eq!(
            split.taken,
            taken(&[
                ("sslmode", "verify-ca"),
                ("sslrootcert", "/tmp/my 'ca'.pem")
            ])
        );
    }

    #[test]
    fn text_the_lexer_cannot_read_is_left_for_tokio_postgres_to_refuse() {
        let split = split("sslmode=require host='unterminated", ssl);
        assert_eq!(split.rest, "host='unterminated");
        assert_eq!(split.taken, taken(&[("sslmode", "require")]));
        assert!(split.rest.parse::<tokio_postgres::Config>().is_err());
    }
}
