//! A small reader over a TOML table that names the field in every error
//! (`connectors.google.token_url: ...`) and refuses unknown keys.

use std::fmt::Display;

use toml::{Table, Value};

use crate::error::{Error, Result};

/// Reads the fields of one TOML table, remembering which keys were read.
#[derive(Debug)]
pub(super) struct Fields<'a> {
    path: String,
    table: &'a Table,
    seen: Vec<&'static str>,
}

/// The `reason` of an [`Error::InvalidInput`], or the whole message.
fn reason_of(e: &Error) -> String {
    match e {
        Error::InvalidInput { what, reason } => format!("{what} {reason}"),
        other => other.to_string(),
    }
}

impl<'a> Fields<'a> {
    pub(super) fn new(path: impl Into<String>, table: &'a Table) -> Self {
        Self {
            path: path.into(),
            table,
            seen: Vec::new(),
        }
    }

    /// The dotted path of this table.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The dotted path of `key` in this table.
    fn child(&self, key: &str) -> String {
        if self.path.is_empty() || key.is_empty() {
            if key.is_empty() {
                self.path.clone()
            } else {
                key.to_owned()
            }
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// An error about `key` in this table.
    pub(super) fn err(&self, key: &str, reason: impl Display) -> Error {
        Error::invalid("catalogue", format!("{}: {reason}", self.child(key)))
    }

    /// Runs a validation of `key`'s value, naming the field in its error.
    pub(super) fn check<T>(&self, key: &str, r: Result<T>) -> Result<T> {
        r.map_err(|e| self.err(key, reason_of(&e)))
    }

    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        self.table.get(key)
    }

    pub(super) fn opt_str(&mut self, key: &'static str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, found {}", v.type_str()))),
        }
    }

    pub(super) fn str(&mut self, key: &'static str) -> Result<&'a str> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    pub(super) fn opt_bool(&mut self, key: &'static str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(
                key,
                format!("expected true or false, found {}", v.type_str()),
            )),
        }
    }

    pub(super) fn opt_u32(&mut self, key: &'static str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => u32::try_from(*i)
                .map(Some)
                .map_err(|_| self.err(key, "must be between 0 and 4294967295")),
            Some(v) => Err(self.err(key, format!("expected an integer, found {}", v.type_str()))),
        }
    }

    /// An array of strings; missing means empty.
    pub(super) fn str_list(&mut self, key: &'static str) -> Result<Vec<&'a str>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.as_str()),
                    v => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a string, found {}", v.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected an array, found {}", v.type_str()))),
        }
    }

    /// An inline table of strings; missing means empty.
    pub(super) fn str_map(&mut self, key: &'static str) -> Result<Vec<(&'a str, &'a str)>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Table(t)) => t
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.as_str(), s.as_str())),
                    v => Err(self.err(
                        &format!("{key}.{k}"),
                        format!("expected a string, found {}", v.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(key, format!("expected a table, found {}", v.type_str()))),
        }
    }

    pub(super) fn opt_table(&mut self, key: &'static str) -> Result<Option<Fields<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(Fields::new(self.child(key), t))),
            Some(v) => Err(self.err(key, format!("expected a table, found {}", v.type_str()))),
        }
    }

    /// An array of tables (`[[x.streams]]`); missing means empty.
    pub(super) fn table_list(&mut self, key: &'static str) -> Result<Vec<Fields<'a>>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Table(t) => Ok(Fields::new(format!("{}[{i}]", self.child(key)), t)),
                    v => Err(self.err(
                        &format!("{key}[{i}]"),
                        format!("expected a table, found {}", v.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(self.err(
                key,
                format!("expected an array of tables, found {}", v.type_str()),
            )),
        }
    }

    /// Whether `key` is present (without marking it read).
    pub(super) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// Refuses keys that were never read (typos such as `tokn_url`).
    pub(super) fn finish(self) -> Result<()> {
        match self.table.keys().find(|k| !self.seen.contains(&k.as_str())) {
            Some(k) => Err(self.err(k, "is not a known field")),
            None => Ok(()),
        }
    }
}
