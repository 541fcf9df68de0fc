//! The TOML catalogue: field-level errors, variables, the built-in entries.
#![allow(clippy::unwrap_used)]

use consentry::connector::{
    AuthMethod, Catalogue, ClientAuth, ClientRegistration, Connector, CursorKind, ScopeFormat,
};
use consentry::oauth::OAuthErrorCode;
use consentry::secret::ClientSecret;
use consentry::{Error, ErrorKind};

fn reg() -> ClientRegistration {
    ClientRegistration::new("client").with_secret(ClientSecret::new("secret"))
}

fn err(toml: &str) -> String {
    let e = Catalogue::from_toml(toml).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}");
    e.to_string()
}

const MINIMAL: &str = r#"
[connectors.acme]
authorization_url = "https://acme.example/authorize"
token_url = "https://acme.example/token"
"#;

#[test]
fn a_full_entry_round_trips_into_a_connector() {
    let cat = Catalogue::from_toml(
        r#"
        [connectors.acme]
        name = "Acme CRM"
        docs_url = "https://docs.acme.example/"
        variables = ["region"]
        authorization_url = "https://{region}.acme.example/oauth/authorize?v=2"
        token_url = "https://{region}.acme.example/oauth/token"
        revocation_url = "https://{region}.acme.example/oauth/revoke"
        issuer = "https://{region}.acme.example"
        issuer_in_callback = true
        default_scopes = ["contacts:read"]
        optional_scopes = ["contacts:write"]
        scope_separator = ","
        pkce = false
        client_auth = "post"
        authorization_params = { prompt = "consent", audience = "crm" }
        resources = ["https://api.acme.example/"]

        [connectors.acme.quirks]
        errors_with_200 = true
        scope_format = "array"
        expires_in_as_string = true
        token_type_optional = true
        error_aliases = { bad_code = "invalid_grant" }

        [connectors.acme.account]
        url = "https://{region}.acme.example/me"
        id = "/data/id"
        email = "/data/email"

        [[connectors.acme.streams]]
        name = "contacts"
        required_scopes = ["contacts:read"]
        purposes = ["crm_sync"]
        cursor = "timestamp"
        page_size = 100

        [[connectors.acme.actions]]
        name = "create_contact"
        purpose = "crm_sync"
        required_scopes = ["contacts:write"]
        "#,
    )
    .unwrap();
    let c = cat
        .connector("acme", reg().with_variable("region", "eu-1"))
        .unwrap();
    assert_eq!(c.info().name, "Acme CRM");
    let AuthMethod::OAuth2(cfg) = c.auth() else {
        panic!()
    };
    assert_eq!(
        cfg.authorization_url().as_str(),
        "https://eu-1.acme.example/oauth/authorize?v=2"
    );
    assert_eq!(
        cfg.token_url().as_str(),
        "https://eu-1.acme.example/oauth/token"
    );
    assert_eq!(cfg.issuer(), Some("https://eu-1.acme.example"));
    assert!(cfg.issuer_in_callback() && !cfg.pkce());
    assert_eq!(cfg.client_auth(), ClientAuth::Post);
    assert_eq!(cfg.scope_separator(), ",");
    assert_eq!(cfg.authorization_params().len(), 2);
    assert_eq!(cfg.resources().len(), 1);
    let q = cfg.quirks();
    assert!(q.errors_with_200 && q.expires_in_as_string && q.token_type_optional);
    assert_eq!(q.scope_format, ScopeFormat::Array);
    assert_eq!(q.error_code("bad_code"), OAuthErrorCode::InvalidGrant);
    let account = cfg.account().unwrap();
    assert_eq!(account.url().as_str(), "https://eu-1.acme.example/me");
    assert_eq!(
        (
            account.id_pointer(),
            account.email_pointer(),
            account.name_pointer()
        ),
        ("/data/id", Some("/data/email"), None)
    );
    assert_eq!(c.streams()[0].cursor(), CursorKind::Timestamp);
    assert_eq!(c.streams()[0].page_size(), Some(100));
    assert_eq!(c.actions()[0].purpose().as_str(), "crm_sync");
}

#[test]
fn errors_name_the_field() {
    for (toml, needle) in [
        ("[connectors.x]\ntoken_url = \"https://a/t\"".to_owned(), "connectors.x.authorization_url: is required"),
        ("[connectors.x]\nauthorization_url = 5\ntoken_url = \"https://a/t\"".to_owned(), "connectors.x.authorization_url: expected a string, found integer"),
        (format!("{MINIMAL}tokn_url = \"x\""), "connectors.acme.tokn_url: is not a known field"),
        (format!("{MINIMAL}revocation_url = \"not a url\""), "connectors.acme.revocation_url"),
        (format!("{MINIMAL}default_scopes = [\"ok\", \"two words\"]"), "connectors.acme.default_scopes"),
        (format!("{MINIMAL}default_scopes = [\"ok\", 3]"), "connectors.acme.default_scopes[1]: expected a string"),
        (format!("{MINIMAL}client_auth = \"jwt\""), "connectors.acme.client_auth"),
        (format!("{MINIMAL}pkce = \"yes\""), "connectors.acme.pkce: expected true or false"),
        (format!("{MINIMAL}authorization_params = {{ state = \"x\" }}"), "connectors.acme.authorization parameter"),
        (format!("{MINIMAL}authorization_params = {{ a = 1 }}"), "connectors.acme.authorization_params.a"),
        (format!("{MINIMAL}[connectors.acme.quirks]\nscope_format = \"semicolon\""), "connectors.acme.quirks.scope_format"),
        (format!("{MINIMAL}[connectors.acme.quirks]\nerrors_with_201 = true"), "connectors.acme.quirks.errors_with_201"),
        (format!("{MINIMAL}[connectors.acme.account]\nurl = \"https://a/me\""), "connectors.acme.account.id: is required"),
        (format!("{MINIMAL}[[connectors.acme.streams]]\nname = \"a b\""), "connectors.acme.streams[0].name"),
        (format!("{MINIMAL}[[connectors.acme.streams]]\nname = \"s\"\npage_size = -1"), "connectors.acme.streams[0].page_size"),
        (format!("{MINIMAL}[[connectors.acme.actions]]\nname = \"a\""), "connectors.acme.actions[0].purpose: is required"),
        ("[connectors.x]\nauthorization_url = \"http://a.example/auth\"\ntoken_url = \"https://a/t\"".to_owned(), "connectors.x.authorization_url: must be an https URL"),
        ("[connectors.x]\nauthorization_url = \"https://a/{tenant}\"\ntoken_url = \"https://a/t\"".to_owned(), "undeclared variable `tenant`"),
        ("[connectors.\"bad id\"]\nauthorization_url = \"https://a/\"\ntoken_url = \"https://a/t\"".to_owned(), "connector id"),
        ("[connectors.x]\nauthorization_url = \"https://a/\"\ntoken_url = \"https://a/t\"\nclient_auth = \"none\"\nissuer_in_callback = true".to_owned(), "connectors.x.issuer_in_callback"),
        ("[other]\nx = 1".to_owned(), "only a `connectors` table"),
        ("[connectors.x\n".to_owned(), "TOML syntax error at line 1"),
        ("\n\n[connectors.x]\nauthorization_url = \"https://a/\"\nauthorization_url = \"https://b/\"".to_owned(), "line 5"),
    ] {
        let msg = err(&toml);
        assert!(msg.contains(needle), "{toml:?}\n  wanted: {needle}\n  got:    {msg}");
    }
}

#[test]
fn variables_are_required_known_and_inert() {
    let cat = Catalogue::builtin().unwrap();
    let e = cat.connector("microsoft-tenant", reg()).unwrap_err();
    assert!(e.to_string().contains("needs variable `tenant`"), "{e}");
    let e = cat
        .connector("google", reg().with_variable("tenant", "x"))
        .unwrap_err();
    assert!(e.to_string().contains("not a variable"), "{e}");
    for evil in [
        "evil.example/x",
        "a?b",
        "a#b",
        "a@b",
        "",
        "%2F",
        "a b",
        "..\u{0}",
    ] {
        let e = cat
            .connector("microsoft-tenant", reg().with_variable("tenant", evil))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidInput {
                    what: "catalogue variable",
                    ..
                }
            ),
            "{evil:?}: {e:?}"
        );
    }
    let c = cat
        .connector(
            "microsoft-tenant",
            reg().with_variable("tenant", "contoso.onmicrosoft.com"),
        )
        .unwrap();
    assert_eq!(
        c.config().token_url().as_str(),
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
}

#[test]
fn client_credentials_come_from_the_registration() {
    let cat = Catalogue::from_toml(&format!("{MINIMAL}client_auth = \"basic\"")).unwrap();
    let e = cat
        .connector("acme", ClientRegistration::new("id"))
        .unwrap_err();
    assert!(e.to_string().contains("client_secret"), "{e}");
    let public = Catalogue::from_toml(&format!("{MINIMAL}client_auth = \"none\"")).unwrap();
    assert!(
        public.connector("acme", reg()).is_err(),
        "a secret for a public client is refused"
    );
    assert!(
        public
            .connector("acme", ClientRegistration::new("id"))
            .is_ok()
    );
    assert!(matches!(
        cat.connector("nope", reg()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn extend_replaces_and_is_atomic() {
    let mut cat = Catalogue::builtin().unwrap();
    let n = cat.len();
    cat.extend_toml(
        r#"[connectors.github]
        name = "GitHub Enterprise"
        authorization_url = "https://ghe.example/login/oauth/authorize"
        token_url = "https://ghe.example/login/oauth/access_token"
        "#,
    )
    .unwrap();
    assert_eq!(cat.len(), n);
    assert_eq!(cat.get("github").unwrap().name(), "GitHub Enterprise");
    let bad = format!("{MINIMAL}[connectors.second]\ntoken_url = \"https://x/t\"");
    assert!(cat.extend_toml(&bad).is_err());
    assert!(
        cat.get("acme").is_none(),
        "nothing from a failed extend is kept"
    );
}

#[test]
fn every_builtin_entry_builds_with_https_endpoints() {
    let cat = Catalogue::builtin().unwrap();
    let ids: Vec<_> = cat.entries().map(|e| e.id().as_str().to_owned()).collect();
    assert_eq!(
        ids,
        [
            "github",
            "google",
            "microsoft",
            "microsoft-tenant",
            "notion",
            "slack",
            "spotify"
        ]
    );
    for entry in cat.entries() {
        let mut r = reg();
        for v in entry.variables() {
            r = r.with_variable(v.clone(), "tenant-1");
        }
        let c = entry.connector(r).unwrap();
        let cfg = c.config();
        let mut urls = vec![cfg.authorization_url(), cfg.token_url()];
        urls.extend(cfg.revocation_url());
        urls.extend(cfg.introspection_url());
        urls.extend(cfg.discovery_url());
        urls.extend(cfg.account().map(|a| a.url()));
        for u in urls {
            assert_eq!(u.scheme(), "https", "{}: {u}", entry.id());
        }
        assert!(cfg.pkce(), "{}", entry.id());
        assert!(c.info().docs_url.is_some(), "{}", entry.id());
    }
}

#[test]
fn builtin_provider_facts() {
    let cat = Catalogue::builtin().unwrap();
    let get = |id: &str| cat.connector(id, reg()).unwrap();
    let google = get("google");
    let g = google.config();
    assert_eq!(
        g.authorization_url().as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(
        g.token_url().as_str(),
        "https://oauth2.googleapis.com/token"
    );
    assert_eq!(
        g.revocation_url().unwrap().as_str(),
        "https://oauth2.googleapis.com/revoke"
    );
    let params: Vec<_> = g
        .authorization_params()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert!(
        params.contains(&"access_type=offline".to_owned())
            && params.contains(&"prompt=consent".to_owned())
    );

    let ms = get("microsoft");
    assert!(
        ms.config()
            .default_scopes()
            .iter()
            .any(|s| s.as_str() == "offline_access")
    );
    assert_eq!(
        ms.config().token_url().as_str(),
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    assert!(ms.config().revocation_url().is_none());

    let gh = get("github");
    let q = gh.config().quirks();
    assert!(q.errors_with_200);
    assert_eq!(q.scope_format, ScopeFormat::CommaString);
    assert_eq!(
        q.error_code("bad_verification_code"),
        OAuthErrorCode::InvalidGrant
    );
    assert_eq!(
        gh.config().token_url().as_str(),
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(gh.config().account().unwrap().id_pointer(), "/id");

    let slack = get("slack");
    assert_eq!(slack.config().scope_separator(), ",");
    assert!(slack.config().quirks().errors_with_200);
    assert_eq!(
        slack.config().quirks().scope_format,
        ScopeFormat::CommaString
    );

    let spotify = get("spotify");
    assert!(spotify.config().revocation_url().is_none());
    assert_eq!(
        spotify.config().token_url().as_str(),
        "https://accounts.spotify.com/api/token"
    );

    let notion = get("notion");
    assert_eq!(notion.config().client_auth(), ClientAuth::Basic);
    assert!(notion.config().default_scopes().is_empty());
    assert_eq!(
        notion.config().token_url().as_str(),
        "https://api.notion.com/v1/oauth/token"
    );
}

mod never_panics {
    use consentry::connector::Catalogue;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn on_arbitrary_text(s in "\\PC{0,300}") {
            let _ = Catalogue::from_toml(&s);
        }

        #[test]
        fn on_toml_shaped_text(
            key in "[a-z_]{1,20}",
            value in prop_oneof!["\"[ -~]{0,40}\"", "[0-9-]{1,5}", Just("true".to_owned()), "\\[\"[a-z{}:/.]{0,20}\"\\]"],
            url in "https://[a-z{}]{1,10}\\.example/[a-z{}]{0,10}",
        ) {
            let text = format!(
                "[connectors.x]\nvariables = [\"v\"]\nauthorization_url = \"{url}\"\ntoken_url = \"{url}\"\n{key} = {value}\n"
            );
            let _ = Catalogue::from_toml(&text);
        }
    }
}
