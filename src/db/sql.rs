//! The registry of every SQL statement the crate sends: its text, the
//! parameter types it is bound with, and the columns its decoder reads.
//!
//! Each module of `db` keeps its SQL beside the code that runs it and lists
//! it in its `STATEMENTS` (with `statement!`); [`statements`] gathers them
//! all. `tests/api/sql.rs` prepares every one against the migrated
//! schema and checks the parameter types PostgreSQL infers and the columns'
//! types against what is declared here; a unit test below fails when a SQL
//! constant of `src/db` is missing from the registry; and in debug builds
//! every statement sent through the pool is checked against it (see
//! `check_bound`), so the declared types are the ones the code binds.

use std::collections::HashMap;
use std::sync::OnceLock;

use tokio_postgres::types::{FromSql, Type};

use super::DbError;

/// One statement of the crate.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    /// The module that declares it, e.g. `ontab::db::customers`.
    pub module: &'static str,
    /// Its name there, e.g. `CREATE`.
    pub name: &'static str,
    pub sql: &'static str,
    /// The types its parameters are bound with, `$1` first.
    pub params: &'static [Type],
    /// The columns of its rows that the code decodes.
    pub columns: &'static [Column],
}

/// A column the code reads, and whether its decoding accepts a type.
#[derive(Clone, Copy)]
pub struct Column {
    pub at: At,
    /// `FromSql::accepts` of the Rust type it is decoded into.
    pub accepts: fn(&Type) -> bool,
    /// That Rust type's name, for messages.
    pub rust_type: fn() -> &'static str,
}

/// How the code finds a column in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Name(&'static str),
    Index(usize),
}

impl Column {
    /// The column called `name`, decoded as `T`.
    pub const fn named<T: FromSql<'static>>(name: &'static str) -> Self {
        Self {
            at: At::Name(name),
            accepts: T::accepts,
            rust_type: std::any::type_name::<T>,
        }
    }

    /// The column at `index`, decoded as `T`.
    pub const fn at<T: FromSql<'static>>(index: usize) -> Self {
        Self {
            at: At::Index(index),
            accepts: T::accepts,
            rust_type: std::any::type_name::<T>,
        }
    }
}

impl Statement {
    /// `module::NAME`.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.module, self.name)
    }
}

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} as {}", self.at, (self.rust_type)())
    }
}

/// A registry entry for the SQL constant `$sql` of the calling module:
/// `statement!(CREATE, &[Type::UUID, Type::TEXT], COLUMNS)`, named after the
/// module and the constant so the name cannot drift.
macro_rules! statement {
    ($sql:ident, $params:expr, $columns:expr $(,)?) => {
        $crate::db::sql::Statement {
            module: module_path!(),
            name: stringify!($sql),
            sql: $sql,
            params: $params,
            columns: $columns,
        }
    };
}
pub(crate) use statement;

/// Every statement of the crate, module by module.
pub fn statements() -> Vec<Statement> {
    [
        super::STATEMENTS,
        super::tx::STATEMENTS,
        super::api_keys::STATEMENTS,
        super::businesses::STATEMENTS,
        super::customers::STATEMENTS,
        super::events::STATEMENTS,
        super::deliveries::STATEMENTS,
        super::holds::STATEMENTS,
        super::idempotency::STATEMENTS,
        super::ledger::STATEMENTS,
        super::login::STATEMENTS,
        super::orders::STATEMENTS,
        super::payment::STATEMENTS,
        super::products::STATEMENTS,
        super::purchase::STATEMENTS,
        super::reports::STATEMENTS,
        super::returns::STATEMENTS,
        super::statements::STATEMENTS,
        super::stock::STATEMENTS,
        super::write_off::STATEMENTS,
        super::webhooks::STATEMENTS,
        super::migrate::STATEMENTS,
        super::citus::STATEMENTS,
    ]
    .into_iter()
    .flatten()
    .copied()
    .chain(super::audit::statements())
    .collect()
}

/// The statements only a Citus coordinator can prepare (see
/// `db::citus`); not among [`statements`], which every PostgreSQL prepares.
pub fn citus_only_statements() -> Vec<Statement> {
    super::citus::CITUS_ONLY.to_vec()
}

/// The registered parameter types of each SQL text.
fn by_sql() -> &'static HashMap<&'static str, Vec<&'static [Type]>> {
    static BY_SQL: OnceLock<HashMap<&'static str, Vec<&'static [Type]>>> = OnceLock::new();
    BY_SQL.get_or_init(|| {
        let mut map: HashMap<&'static str, Vec<&'static [Type]>> = HashMap::new();
        for statement in statements() {
            map.entry(statement.sql).or_default().push(statement.params);
        }
        map
    })
}

/// Refuses to send `sql` bound with `types` unless the registry lists it
/// with exactly these types: a statement added without registering it, or
/// bound with other types than declared, fails the first test that runs it
/// (debug builds only; it is a check of the code, not of the input).
pub(super) fn check_bound(sql: &str, types: &[Type]) -> Result<(), DbError> {
    match by_sql().get(sql) {
        Some(declared) if declared.contains(&types) => Ok(()),
        Some(declared) => Err(DbError::Decode(format!(
            "statement bound with {types:?}, but db::sql::statements() declares {declared:?}: {sql}"
        ))),
        None => Err(DbError::Decode(format!(
            "statement not in db::sql::statements(): {sql}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::statements;

    /// Whether a Rust string literal's text is SQL this check is about.
    fn is_sql(literal: &str) -> bool {
        // `"\` + newline continues a literal on the next line.
        let text = literal
            .trim_start_matches(|c: char| c.is_whitespace() || c == '\\')
            .to_ascii_uppercase();
        ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"]
            .iter()
            .any(|keyword| {
                text.strip_prefix(keyword)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_whitespace()))
            })
    }

    /// The string literals of `code`, each with the byte offset it starts
    /// at; comments skipped, escapes kept as written (enough to see SQL).
    fn literals(code: &str) -> Vec<(usize, &str)> {
        let bytes = code.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'/') => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                b'\'' => {
                    // A char literal ('"', '\'') or a lifetime: step over
                    // the char literal so its quote is not taken for a
                    // string's.
                    match (bytes.get(i + 1), bytes.get(i + 2), bytes.get(i + 3)) {
                        (Some(b'\\'), _, Some(b'\'')) => i += 4,
                        (Some(_), Some(b'\''), _) => i += 3,
                        _ => i += 1,
                    }
                }
                b'"' => {
                    let start = i + 1;
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        if bytes[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    found.push((start, &code[start..i.min(code.len())]));
                    i += 1;
                }
                _ => i += 1,
            }
        }
        found
    }

    /// The item a literal at `offset` belongs to: `Some(("const", NAME))`
    /// for a `const NAME: &str`, `Some(("other const", NAME))` for a const
    /// of another type, `Some(("macro", NAME))` inside `macro_rules!`, or
    /// `None` when it is written inline in code.
    fn enclosing_item(code: &str, offset: usize) -> Option<(&'static str, String)> {
        let before = &code[..offset];
        // Items start at the beginning of a line in this crate's style.
        let start = [
            "const ",
            "pub const ",
            "pub(super) const ",
            "pub(crate) const ",
            "macro_rules! ",
        ]
        .iter()
        .filter_map(|item| {
            let at_line_start = before.rfind(&format!("\n{item}")).map(|i| i + 1);
            at_line_start.or_else(|| before.starts_with(item).then_some(0))
        })
        .max()?;
        // The item must still be open: no top-level `;` or closing `}` line
        // between its start and the literal.
        let between = &code[start..offset];
        if between.contains(";\n") || between.contains("\n}") {
            return None;
        }
        let head = between.lines().next().unwrap_or_default();
        let name_of = |rest: &str| {
            rest.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        };
        if let Some(rest) = head.strip_prefix("macro_rules! ") {
            return Some(("macro", name_of(rest)));
        }
        let rest = head.split_once("const ")?.1;
        let name = name_of(rest);
        let kind = if rest[name.len()..].trim_start().starts_with(": &str") {
            "const"
        } else {
            "other const"
        };
        Some((kind, name))
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{dir:?}: {error}"));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_sql_constant_of_src_db_is_in_the_registry() {
        let registered: HashSet<String> = statements()
            .iter()
            .chain(&super::citus_only_statements())
            .map(|s| s.full_name())
            .collect();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/db");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        files.sort();
        let mut problems = Vec::new();
        for path in &files {
            let relative = path.strip_prefix(&root).unwrap_or(path);
            if relative.file_name().is_some_and(|name| name == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            // Unit tests may hold SQL of their own.
            let code = text.split("\n#[cfg(test)]").next().unwrap_or_default();
            let module = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .filter(|part| part != "mod")
                .fold("ontab::db".to_owned(), |path, part| path + "::" + &part);
            for (offset, literal) in literals(code) {
                if !is_sql(literal) {
                    continue;
                }
                let line = code[..offset].matches('\n').count() + 1;
                let place = format!("src/db/{}:{line}", relative.display());
                match enclosing_item(code, offset) {
                    Some(("const", name)) => {
                        let full = format!("{module}::{name}");
                        if !registered.contains(&full) {
                            problems.push(format!("{place}: {full} is not in its STATEMENTS"));
                        }
                    }
                    // Parts of statements: macros pieced together with
                    // concat!, and audit's table of checks (registered by
                    // audit::statements from the table itself).
                    Some(_) => {}
                    None => problems.push(format!(
                        "{place}: SQL written inline; make it a `const NAME: &str` and register it"
                    )),
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn registered_names_are_unique() {
        let all = statements();
        let mut seen = HashSet::new();
        for statement in &all {
            assert!(seen.insert(statement.full_name()), "twice: {statement:?}");
        }
        assert!(all.len() > 30, "the registry lost its statements");
    }

    #[test]
    fn the_scanner_finds_inline_and_unregistered_sql() {
        let code = "const A: &str = \"SELECT 1\";\nfn f() { q(\"  update t set x = 1\"); let c = '\"'; }\nconst B: &[X] = &[X { sql: \"WITH a AS (SELECT 1) SELECT 1\" }];\n";
        let found: Vec<_> = literals(code)
            .into_iter()
            .filter(|(_, literal)| is_sql(literal))
            .map(|(offset, _)| enclosing_item(code, offset))
            .collect();
        assert_eq!(
            found,
            [
                Some(("const", "A".to_owned())),
                None,
                Some(("other const", "B".to_owned())),
            ]
        );
        assert!(
            is_sql("\\\n    SELECT 1"),
            "a literal opened with a line continuation"
        );
        assert!(!is_sql("SELECTED"));
        assert!(!is_sql("with-chrono"));
    }
}
