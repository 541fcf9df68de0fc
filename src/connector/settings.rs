//! Connection settings a user may choose per connection (which calendar,
//! which shelves, how often to sync), declared by a connector as a typed
//! [`SettingsSchema`] and validated with field-level errors.

use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Result};

/// The type and bounds of one setting.
///
/// ```
/// use consentry::connector::SettingKind;
/// let k = SettingKind::Integer { min: 15, max: 1440 };
/// assert_ne!(k, SettingKind::Boolean);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingKind {
    /// Text of at most `max_len` bytes, without control characters.
    Text {
        /// The longest value.
        max_len: usize,
    },
    /// An integer in `min..=max`.
    Integer {
        /// The smallest value.
        min: i64,
        /// The largest value.
        max: i64,
    },
    /// `true` or `false`.
    Boolean,
    /// One of the listed values.
    Choice(Vec<String>),
    /// A list of at most `max_items` texts, each one of `allowed` when that
    /// is not empty.
    List {
        /// The allowed values (empty: any text of at most 256 bytes).
        allowed: Vec<String>,
        /// The most items.
        max_items: usize,
    },
}

/// One setting: name, kind, whether it is required, its default.
///
/// ```
/// use consentry::connector::{SettingField, SettingKind};
/// let f = SettingField::new("calendar", SettingKind::Text { max_len: 200 })?
///     .with_default(serde_json::json!("primary"));
/// assert_eq!(f.name(), "calendar");
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SettingField {
    name: String,
    kind: SettingKind,
    required: bool,
    default: Option<Value>,
}

impl SettingField {
    /// An optional setting without default.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `name` is not a token (ASCII letters,
    /// digits, `_ - . :`, at most 64 bytes).
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind};
    /// assert!(SettingField::new("calendar", SettingKind::Boolean).is_ok());
    /// assert!(SettingField::new("not a token", SettingKind::Boolean).is_err());
    /// ```
    pub fn new(name: &str, kind: SettingKind) -> Result<Self> {
        crate::ids::check_token("setting name", name, 64)?;
        Ok(Self {
            name: name.to_owned(),
            kind,
            required: false,
            default: None,
        })
    }

    /// Makes it required.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
    /// let schema = SettingsSchema::new().field(SettingField::new("calendar", SettingKind::Text { max_len: 200 })?.required());
    /// assert!(schema.validate(&serde_json::json!({})).is_err());
    /// assert!(schema.validate(&serde_json::json!({"calendar": "work"})).is_ok());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the value used when the user gives none.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
    /// let field = SettingField::new("notify", SettingKind::Boolean)?.with_default(serde_json::json!(true));
    /// let settings = SettingsSchema::new().field(field).validate(&serde_json::json!({}))?;
    /// assert_eq!(settings["notify"], true);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn with_default(mut self, value: Value) -> Self {
        self.default = Some(value);
        self
    }

    /// The setting's name.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind};
    /// assert_eq!(SettingField::new("notify", SettingKind::Boolean)?.name(), "notify");
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind};
    /// assert_eq!(SettingField::new("notify", SettingKind::Boolean)?.kind(), &SettingKind::Boolean);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn kind(&self) -> &SettingKind {
        &self.kind
    }

    fn check(&self, v: &Value) -> std::result::Result<(), String> {
        match (&self.kind, v) {
            (SettingKind::Text { max_len }, Value::String(s)) => {
                if s.len() > *max_len || s.contains(char::is_control) {
                    Err(format!(
                        "must be at most {max_len} bytes without control characters"
                    ))
                } else {
                    Ok(())
                }
            }
            (SettingKind::Integer { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(i) if (*min..=*max).contains(&i) => Ok(()),
                _ => Err(format!("must be an integer from {min} to {max}")),
            },
            (SettingKind::Boolean, Value::Bool(_)) => Ok(()),
            (SettingKind::Choice(choices), Value::String(s)) if choices.contains(s) => Ok(()),
            (SettingKind::Choice(choices), _) => {
                Err(format!("must be one of {}", choices.join(", ")))
            }
            (SettingKind::List { allowed, max_items }, Value::Array(items)) => {
                if items.len() > *max_items {
                    return Err(format!("must have at most {max_items} items"));
                }
                for (i, item) in items.iter().enumerate() {
                    let ok = item.as_str().is_some_and(|s| {
                        if allowed.is_empty() {
                            s.len() <= 256 && !s.contains(char::is_control)
                        } else {
                            allowed.iter().any(|a| a == s)
                        }
                    });
                    if !ok {
                        return Err(if allowed.is_empty() {
                            format!("item {i} must be text of at most 256 bytes")
                        } else {
                            format!("item {i} must be one of {}", allowed.join(", "))
                        });
                    }
                }
                Ok(())
            }
            (kind, _) => Err(format!(
                "must be {}",
                match kind {
                    SettingKind::Text { .. } => "text",
                    SettingKind::Integer { .. } => "an integer",
                    SettingKind::Boolean => "true or false",
                    SettingKind::List { .. } => "a list",
                    SettingKind::Choice(_) => "one of the choices",
                }
            )),
        }
    }
}

/// The settings a connector accepts per connection.
///
/// ```
/// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
/// let schema = SettingsSchema::new()
///     .field(SettingField::new("shelves", SettingKind::List { allowed: vec![], max_items: 20 })?)
///     .field(SettingField::new("sync_interval_minutes", SettingKind::Integer { min: 15, max: 1440 })?
///         .with_default(serde_json::json!(60)));
/// let ok = schema.validate(&serde_json::json!({"shelves": ["read"]}))?;
/// assert_eq!(ok["sync_interval_minutes"], 60); // default filled in
/// let err = schema.validate(&serde_json::json!({"shelves": "read", "colour": 1})).unwrap_err();
/// let consentry::Error::InvalidSettings { errors } = err else { unreachable!() };
/// assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["colour", "shelves"]);
/// # Ok::<(), consentry::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsSchema {
    fields: Vec<SettingField>,
}

impl SettingsSchema {
    /// A schema without settings (every settings object but `{}` is
    /// refused).
    ///
    /// ```
    /// use consentry::connector::SettingsSchema;
    /// let schema = SettingsSchema::new();
    /// assert!(schema.fields().is_empty());
    /// assert!(schema.validate(&serde_json::json!({})).is_ok());
    /// assert!(schema.validate(&serde_json::json!({"x": 1})).is_err());
    /// ```
    pub const fn new() -> Self {
        Self { fields: Vec::new() }
    }

    /// Adds a setting.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
    /// let schema = SettingsSchema::new().field(SettingField::new("notify", SettingKind::Boolean)?);
    /// assert_eq!(schema.fields().len(), 1);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    #[must_use]
    pub fn field(mut self, field: SettingField) -> Self {
        self.fields.push(field);
        self
    }

    /// The settings.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
    /// let schema = SettingsSchema::new()
    ///     .field(SettingField::new("a", SettingKind::Boolean)?)
    ///     .field(SettingField::new("b", SettingKind::Boolean)?);
    /// assert_eq!(schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn fields(&self) -> &[SettingField] {
        &self.fields
    }

    /// Checks `settings` (a JSON object) and returns it with defaults
    /// filled in.
    ///
    /// # Errors
    /// [`Error::InvalidSettings`] listing every refused field: unknown
    /// names, missing required ones, wrong types, out-of-range values.
    ///
    /// ```
    /// use consentry::connector::{SettingField, SettingKind, SettingsSchema};
    /// let schema = SettingsSchema::new()
    ///     .field(SettingField::new("view", SettingKind::Choice(vec!["day".into(), "week".into()]))?);
    /// assert_eq!(schema.validate(&serde_json::json!({"view": "week"}))?["view"], "week");
    /// assert!(schema.validate(&serde_json::json!({"view": "year"})).is_err());
    /// assert!(schema.validate(&serde_json::json!(["not", "an", "object"])).is_err());
    /// # Ok::<(), consentry::Error>(())
    /// ```
    pub fn validate(&self, settings: &Value) -> Result<Map<String, Value>> {
        let Some(given) = settings.as_object() else {
            return Err(Error::InvalidSettings {
                errors: vec![FieldError::new("", "settings must be a JSON object")],
            });
        };
        let mut errors = Vec::new();
        let mut unknown: Vec<&String> = given
            .keys()
            .filter(|k| !self.fields.iter().any(|f| f.name == **k))
            .collect();
        unknown.sort();
        for k in unknown.into_iter().take(100) {
            let shown: String = k.chars().filter(|c| !c.is_control()).take(64).collect();
            errors.push(FieldError::new(shown, "is not a setting of this connector"));
        }
        let mut out = Map::new();
        for f in &self.fields {
            match given.get(&f.name).filter(|v| !v.is_null()) {
                Some(v) => match f.check(v) {
                    Ok(()) => {
                        out.insert(f.name.clone(), v.clone());
                    }
                    Err(message) => errors.push(FieldError::new(f.name.clone(), message)),
                },
                None if f.required => errors.push(FieldError::new(f.name.clone(), "is required")),
                None => {
                    if let Some(d) = &f.default {
                        out.insert(f.name.clone(), d.clone());
                    }
                }
            }
        }
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(Error::InvalidSettings { errors })
        }
    }
}
