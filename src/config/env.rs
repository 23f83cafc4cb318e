//! `PINLESS_` environment overrides: `PINLESS_API__LISTEN=127.0.0.1:9090`
//! sets `[api] listen`. A double underscore nests; a number indexes an
//! array of tables (`PINLESS_DIALIN__0__HMAC`). Values are read as TOML
//! literals when they parse as one (`true`, `42`, `["a","b"]`), else as
//! plain strings.

use super::error::ConfigError;
use toml::{Table, Value};

const PREFIX: &str = "PINLESS_";

/// Applies every `PINLESS_…` variable of `vars` to `table`.
pub(super) fn apply(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k.len() > PREFIX.len())
        .collect();
    // Deterministic order, so that a nested key never races its parent.
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        set(table, &path, literal(&raw)).map_err(|reason| ConfigError::Env { name, reason })?;
    }
    Ok(())
}

fn literal(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (first, rest) = path.split_first().ok_or("empty key")?;
    if first.is_empty() {
        return Err("empty key segment".into());
    }
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let child = table
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    set_in(child, rest, value)
}

fn set_in(node: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    match node {
        Value::Table(t) => set(t, path, value),
        Value::Array(items) => {
            let (index, rest) = path.split_first().ok_or("empty key")?;
            let i: usize = index
                .parse()
                .map_err(|_| format!("{index:?} is not an array index"))?;
            if i > items.len() {
                return Err(format!(
                    "index {i} skips entries (array has {})",
                    items.len()
                ));
            }
            if i == items.len() {
                items.push(Value::Table(Table::new()));
            }
            if rest.is_empty() {
                items[i] = value;
                return Ok(());
            }
            set_in(&mut items[i], rest, value)
        }
        _ => Err("parent key is not a table".into()),
    }
}
