//! Reading a catalogue entry from its TOML table.

use url::Url;

use super::fields::Fields;
use super::{AccountTemplate, CatalogueEntry, ClientRegistration, substitute, template_url};
use crate::connector::{
    ActionSpec, ClientAuth, CursorKind, HttpStream, Pagination, Quirks, ScopeFormat, StreamSpec,
};
use crate::error::{Error, Result};
use crate::ids::{ConnectorId, Purpose, Scope};
use crate::oauth::OAuthErrorCode;
use crate::secret::ClientSecret;

impl CatalogueEntry {
    /// Reads one `[connectors.<id>]` table.
    pub(super) fn parse(id: &str, mut f: Fields<'_>) -> Result<Self> {
        let id = f.check("", ConnectorId::new(id))?;
        let variables: Vec<String> = f
            .str_list("variables")?
            .into_iter()
            .map(str::to_owned)
            .collect();
        for v in &variables {
            f.check("variables", crate::ids::check_token("variable name", v, 64))?;
        }
        let sample: Vec<(String, String)> = variables
            .iter()
            .map(|v| (v.clone(), "example".to_owned()))
            .collect();
        let template =
            |f: &mut Fields<'_>, key: &'static str, required: bool| -> Result<Option<String>> {
                let value = if required {
                    Some(f.str(key)?)
                } else {
                    f.opt_str(key)?
                };
                if let Some(t) = value {
                    f.check(key, template_url(key, t, &sample))?;
                }
                Ok(value.map(str::to_owned))
            };
        let authorization_url = template(&mut f, "authorization_url", true)?.unwrap_or_default();
        let token_url = template(&mut f, "token_url", true)?.unwrap_or_default();
        let revocation_url = template(&mut f, "revocation_url", false)?;
        let introspection_url = template(&mut f, "introspection_url", false)?;
        let discovery_url = template(&mut f, "discovery_url", false)?;
        let issuer = match f.opt_str("issuer")? {
            Some(t) => {
                f.check("issuer", substitute(t, &sample))?;
                Some(t.to_owned())
            }
            None => None,
        };
        let plain_url = |f: &mut Fields<'_>, key: &'static str| -> Result<Option<Url>> {
            match f.opt_str(key)? {
                Some(s) => Ok(Some(f.check(
                    key,
                    Url::parse(s).map_err(|e| Error::invalid("url", e.to_string())),
                )?)),
                None => Ok(None),
            }
        };
        let docs_url = plain_url(&mut f, "docs_url")?;
        let api_base_url = template(&mut f, "api_base_url", false)?;
        let icon_url = plain_url(&mut f, "icon_url")?;
        let scopes = |f: &mut Fields<'_>, key: &'static str| -> Result<Vec<Scope>> {
            let list = f.str_list(key)?;
            list.into_iter()
                .map(|s| f.check(key, Scope::new(s)))
                .collect()
        };
        let default_scopes = scopes(&mut f, "default_scopes")?;
        let optional_scopes = scopes(&mut f, "optional_scopes")?;
        let client_auth = match f.opt_str("client_auth")? {
            None => ClientAuth::Basic,
            Some(s) => ClientAuth::parse(s)
                .ok_or_else(|| f.err("client_auth", "must be \"basic\", \"post\" or \"none\""))?,
        };
        let mut resources = Vec::new();
        for r in f.str_list("resources")? {
            resources.push(f.check(
                "resources",
                Url::parse(r).map_err(|e| Error::invalid("url", e.to_string())),
            )?);
        }
        let quirks = match f.opt_table("quirks")? {
            Some(q) => parse_quirks(q)?,
            None => Quirks::default(),
        };
        let account = match f.opt_table("account")? {
            Some(mut a) => {
                let url = template(&mut a, "url", true)?.unwrap_or_default();
                let t = AccountTemplate {
                    url,
                    id: a.str("id")?.to_owned(),
                    email: a.opt_str("email")?.map(str::to_owned),
                    name: a.opt_str("name")?.map(str::to_owned),
                };
                a.finish()?;
                Some(t)
            }
            None => None,
        };
        let mut streams = Vec::new();
        for s in f.table_list("streams")? {
            streams.push(parse_stream(s)?);
        }
        let mut actions = Vec::new();
        for a in f.table_list("actions")? {
            actions.push(parse_action(a)?);
        }
        let entry = Self {
            name: f.opt_str("name")?.map(str::to_owned),
            issuer_in_callback: f.opt_bool("issuer_in_callback")?.unwrap_or(false),
            scope_separator: f.opt_str("scope_separator")?.map(str::to_owned),
            pkce: f.opt_bool("pkce")?.unwrap_or(true),
            authorization_params: f
                .str_map("authorization_params")?
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            id,
            docs_url,
            icon_url,
            authorization_url,
            token_url,
            revocation_url,
            introspection_url,
            discovery_url,
            issuer,
            variables,
            default_scopes,
            optional_scopes,
            client_auth,
            resources,
            quirks,
            account,
            streams,
            actions,
            api_base_url,
        };
        let path = f.path().to_owned();
        f.finish()?;
        // Cross-field rules (secret vs client auth, reserved parameters, https
        // endpoints): build once with placeholder credentials.
        let mut probe = ClientRegistration::new("catalogue-check");
        if entry.client_auth != ClientAuth::None {
            probe = probe.with_secret(ClientSecret::new("catalogue-check"));
        }
        for v in &entry.variables {
            probe = probe.with_variable(v.clone(), "example");
        }
        entry.connector(probe).map_err(|e| match e {
            Error::InvalidInput { what, reason } => {
                Error::invalid("catalogue", format!("{path}.{what}: {reason}"))
            }
            other => other,
        })?;
        Ok(entry)
    }
}

fn parse_quirks(mut q: Fields<'_>) -> Result<Quirks> {
    let mut quirks = Quirks {
        errors_with_200: q.opt_bool("errors_with_200")?.unwrap_or(false),
        expires_in_as_string: q.opt_bool("expires_in_as_string")?.unwrap_or(false),
        token_type_optional: q.opt_bool("token_type_optional")?.unwrap_or(false),
        ..Quirks::default()
    };
    if let Some(s) = q.opt_str("scope_format")? {
        quirks.scope_format = ScopeFormat::parse(s)
            .ok_or_else(|| q.err("scope_format", "must be \"space\", \"comma\" or \"array\""))?;
    }
    for (alias, code) in q.str_map("error_aliases")? {
        quirks
            .error_aliases
            .push((alias.to_owned(), OAuthErrorCode::parse(code)));
    }
    q.finish()?;
    Ok(quirks)
}

fn parse_stream(mut s: Fields<'_>) -> Result<StreamSpec> {
    let name = s.str("name")?;
    let mut spec = s.check("name", StreamSpec::new(name))?;
    let scopes = s.str_list("required_scopes")?;
    let scopes: Vec<Scope> = scopes
        .into_iter()
        .map(|x| s.check("required_scopes", Scope::new(x)))
        .collect::<Result<_>>()?;
    let purposes = s.str_list("purposes")?;
    let purposes: Vec<Purpose> = purposes
        .into_iter()
        .map(|x| s.check("purposes", Purpose::new(x)))
        .collect::<Result<_>>()?;
    spec = spec.with_required_scopes(scopes).with_purposes(purposes);
    if let Some(c) = s.opt_str("cursor")? {
        spec = spec.with_cursor(match c {
            "full_refresh" => CursorKind::FullRefresh,
            "opaque" => CursorKind::Opaque,
            "timestamp" => CursorKind::Timestamp,
            "offset" => CursorKind::Offset,
            _ => {
                return Err(s.err(
                    "cursor",
                    "must be \"full_refresh\", \"opaque\", \"timestamp\" or \"offset\"",
                ));
            }
        });
    }
    if let Some(n) = s.opt_u32("page_size")? {
        spec = spec.with_page_size(n);
    }
    if let Some(m) = s.opt_u32("interval_minutes")? {
        spec = spec.with_interval(std::time::Duration::from_secs(u64::from(m) * 60));
    }
    if let Some(http) = parse_http(&mut s)? {
        spec = spec.with_http(http);
    }
    s.finish()?;
    Ok(spec)
}

/// The request declaration of a stream (`path` and friends), if any.
fn parse_http(s: &mut Fields<'_>) -> Result<Option<HttpStream>> {
    let Some(path) = s.opt_str("path")? else {
        for key in [
            "records",
            "id",
            "kind",
            "query",
            "fields",
            "pagination",
            "token_param",
            "token_pointer",
            "offset_param",
            "limit_param",
            "cursor_field",
            "cursor_param",
            "lookback_seconds",
        ] {
            if s.has(key) {
                return Err(s.err(key, "needs `path` (the stream's request)"));
            }
        }
        return Ok(None);
    };
    let records = s.opt_str("records")?.unwrap_or("");
    let id = s.str("id")?;
    let mut http = s.check("path", HttpStream::new(path, records, id))?;
    for (k, v) in s.str_map("query")? {
        http = http.with_query(k, v);
    }
    if let Some(kind) = s.opt_str("kind")? {
        http = s.check("kind", http.with_kind(kind))?;
    }
    for (name, pointer) in s.str_map("fields")? {
        http = s.check("fields", http.with_field(name, pointer))?;
    }
    let pagination = match s.opt_str("pagination")?.unwrap_or("none") {
        "none" => Pagination::None,
        "link" => Pagination::Link,
        "page_token" => Pagination::PageToken {
            param: s.str("token_param")?.to_owned(),
            pointer: {
                let p = s.str("token_pointer")?;
                if !p.starts_with('/') {
                    return Err(s.err("token_pointer", "must be a JSON pointer such as `/next`"));
                }
                p.to_owned()
            },
        },
        "offset" => Pagination::Offset {
            offset_param: s.opt_str("offset_param")?.unwrap_or("offset").to_owned(),
            limit_param: s.opt_str("limit_param")?.unwrap_or("limit").to_owned(),
        },
        _ => {
            return Err(s.err(
                "pagination",
                "must be \"none\", \"page_token\", \"link\" or \"offset\"",
            ));
        }
    };
    http = http.with_pagination(pagination);
    match (s.opt_str("cursor_field")?, s.opt_str("cursor_param")?) {
        (Some(field), Some(param)) => {
            let lookback = u64::from(s.opt_u32("lookback_seconds")?.unwrap_or(0));
            http = s.check(
                "cursor_field",
                http.with_cursor(field, param, std::time::Duration::from_secs(lookback)),
            )?;
        }
        (None, None) => {}
        (Some(_), None) => return Err(s.err("cursor_param", "is required with `cursor_field`")),
        (None, Some(_)) => return Err(s.err("cursor_field", "is required with `cursor_param`")),
    }
    Ok(Some(http))
}

fn parse_action(mut a: Fields<'_>) -> Result<ActionSpec> {
    let name = a.str("name")?;
    let purpose = a.str("purpose")?;
    let purpose = a.check("purpose", Purpose::new(purpose))?;
    let mut spec = a.check("name", ActionSpec::new(name, purpose))?;
    let scopes = a.str_list("required_scopes")?;
    let scopes: Vec<Scope> = scopes
        .into_iter()
        .map(|x| a.check("required_scopes", Scope::new(x)))
        .collect::<Result<_>>()?;
    spec = spec.with_required_scopes(scopes);
    a.finish()?;
    Ok(spec)
}
