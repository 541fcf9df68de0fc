//! The Connected Services web app: configuration, start-up and shutdown.
//! The pages are in `html`, the request handlers in `routes`, sessions and
//! CSRF in `session`.

pub mod html;
pub mod routes;
pub mod session;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use consentry::connector::{AuthMethod, Catalogue, ClientRegistration, Connector, OAuth2Connector};
use consentry::http::ReqwestClient;
use consentry::secret::ClientSecret;
use consentry::store::SqliteStore;
use consentry::testing::{TestClient, TestProvider};
use consentry::url::Url;
use consentry::vault::Keyring;
use consentry::{ConnectorId, Integrations, Purpose};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A boxed error for start-up.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where the connectors come from.
#[derive(Debug)]
pub enum Providers {
    /// An in-process [`TestProvider`] (the default): no network, no account.
    Test,
    /// Real providers: these catalogue entries, each with its client
    /// registration.
    Catalogue(Catalogue, Vec<(String, ClientRegistration)>),
}

/// How the app runs.
#[derive(Debug)]
pub struct Config {
    /// The SQLite file; a fresh temporary one when `None`.
    pub db: Option<PathBuf>,
    /// The keyring; a generated one (lost at exit) when `None`.
    pub keyring: Option<Keyring>,
    /// The URL browsers use for the app; `http://<listen address>/` when
    /// `None`. Its origin is the only one forms are accepted from.
    pub public_url: Option<Url>,
    /// The connectors.
    pub providers: Providers,
}

impl Config {
    /// Everything in-process: a temporary SQLite file, a generated keyring,
    /// a [`TestProvider`].
    pub fn demo() -> Self {
        Self {
            db: None,
            keyring: None,
            public_url: None,
            providers: Providers::Test,
        }
    }

    /// From the environment:
    ///
    /// - `CONSENTRY_DB`: the SQLite file; `CONSENTRY_KEYS`: the keyring;
    /// - `CONNECTED_SERVICES_URL`: the public URL (default the listen address);
    /// - `CONNECTED_SERVICES_CONNECTORS=google,github`: use these catalogue
    ///   entries instead of the test provider, each with `<ID>_CLIENT_ID` and
    ///   `<ID>_CLIENT_SECRET`; `CONSENTRY_CATALOGUE=file.toml` adds entries
    ///   to the built-in catalogue.
    ///
    /// # Errors
    /// A variable that is set but invalid, or a missing client id.
    pub fn from_env() -> Result<Self, BoxError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let keyring = match var("CONSENTRY_KEYS") {
            Some(_) => Some(Keyring::from_env("CONSENTRY_KEYS")?),
            None => None,
        };
        let public_url = var("CONNECTED_SERVICES_URL")
            .map(|u| Url::parse(&u))
            .transpose()?;
        let providers = match var("CONNECTED_SERVICES_CONNECTORS") {
            None => Providers::Test,
            Some(list) => {
                let mut catalogue = Catalogue::builtin()?;
                if let Some(file) = var("CONSENTRY_CATALOGUE") {
                    catalogue.extend_toml(&std::fs::read_to_string(&file)?)?;
                }
                let mut regs = Vec::new();
                for id in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let prefix = id.to_uppercase().replace('-', "_");
                    let client_id = var(&format!("{prefix}_CLIENT_ID")).ok_or_else(|| {
                        format!("{prefix}_CLIENT_ID is not set (connector `{id}`)")
                    })?;
                    let mut reg = ClientRegistration::new(client_id);
                    if let Some(secret) = var(&format!("{prefix}_CLIENT_SECRET")) {
                        reg = reg.with_secret(ClientSecret::new(secret));
                    }
                    regs.push((id.to_owned(), reg));
                }
                Providers::Catalogue(catalogue, regs)
            }
        };
        Ok(Self {
            db: var("CONSENTRY_DB").map(PathBuf::from),
            keyring,
            public_url,
            providers,
        })
    }
}

/// The shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// The facade.
    pub integrations: Integrations,
    /// Browser sessions.
    pub sessions: session::Sessions,
    /// The connectors offered.
    pub cards: Vec<html::Card>,
    /// Each connector's streams and the purposes each serves.
    pub streams: HashMap<ConnectorId, Vec<(String, Vec<Purpose>)>>,
    /// The app's public URL (ends in `/`).
    pub base: Url,
    /// Its origin, as browsers send it in `Origin`.
    pub origin: String,
    /// The origins forms may lead to (the app and each authorization
    /// server), for the CSP `form-action`.
    pub form_origins: String,
}

/// The running app.
#[derive(Debug)]
pub struct Running {
    url: Url,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
    store: SqliteStore,
    provider: Option<TestProvider>,
    _dir: Option<tempfile::TempDir>,
}

impl Running {
    /// Where a browser opens the app.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The test provider, when the app uses one.
    pub fn provider(&self) -> Option<&TestProvider> {
        self.provider.as_ref()
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn wait(&mut self) -> Result<(), BoxError> {
        (&mut self.server).await??;
        Ok(())
    }

    /// Stops the server (letting requests in flight finish), the
    /// background work, and closes the store.
    ///
    /// # Errors
    /// The server's I/O error, or the store failing to close.
    pub async fn stop(mut self) -> Result<(), BoxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await??;
        for task in &self.background {
            task.abort();
        }
        for task in std::mem::take(&mut self.background) {
            let _ = task.await;
        }
        self.store.clone().close().await?;
        Ok(())
    }
}

fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// Starts the app on `listener`.
///
/// # Errors
/// The store, keyring or connectors could not be set up.
pub async fn start(listener: TcpListener, config: Config) -> Result<Running, BoxError> {
    let addr = listener.local_addr()?;
    let base = match config.public_url {
        Some(mut u) => {
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        }
        None => Url::parse(&format!("http://{addr}/"))?,
    };
    let redirect = base.join("callback")?;
    let (connectors, provider): (Vec<OAuth2Connector>, Option<TestProvider>) =
        match config.providers {
            Providers::Test => {
                let client = TestClient::basic().with_redirect_uri(redirect.as_str());
                let provider = TestProvider::builder()
                    .client(client.clone())
                    .start()
                    .await?;
                let toml = provider.catalogue_toml("test-provider", &client, "matching");
                let mut reg = ClientRegistration::new(client.id());
                if let Some(secret) = client.client_secret() {
                    reg = reg.with_secret(secret);
                }
                let connector = Catalogue::from_toml(&toml)?.connector("test-provider", reg)?;
                (vec![connector], Some(provider))
            }
            Providers::Catalogue(catalogue, regs) => {
                let mut out = Vec::new();
                for (id, reg) in regs {
                    out.push(catalogue.connector(&id, reg)?);
                }
                (out, None)
            }
        };
    let (dir, db) = match config.db {
        Some(path) => (None, path),
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("connected-services.db");
            (Some(dir), path)
        }
    };
    let store = SqliteStore::open(&db).await?;
    let keyring = match config.keyring {
        Some(k) => k,
        None => Keyring::generate()?,
    };
    let mut cards = Vec::new();
    let mut streams = HashMap::new();
    let mut form_origins = vec![origin_of(&base)];
    let mut builder = Integrations::builder()
        .store(store.clone())
        .keyring(keyring)
        .http(ReqwestClient::new()?)
        .redirect_uri(redirect);
    for c in connectors {
        let mut purposes: Vec<String> = Vec::new();
        let mut specs = Vec::new();
        for s in c.streams() {
            for p in s.purposes() {
                if !purposes.iter().any(|q| q == p.as_str()) {
                    purposes.push(p.as_str().to_owned());
                }
            }
            specs.push((s.name().to_owned(), s.purposes().to_vec()));
        }
        if let AuthMethod::OAuth2(config) = c.auth() {
            let o = origin_of(config.authorization_url());
            if !form_origins.contains(&o) {
                form_origins.push(o);
            }
        }
        cards.push(html::Card {
            id: c.id().clone(),
            name: c.info().name.clone(),
            purposes,
        });
        streams.insert(c.id().clone(), specs);
        builder = builder.connector(c);
    }
    let integrations = builder.build()?;
    let background = vec![
        tokio::spawn(integrations.refresher()),
        tokio::spawn(integrations.maintenance()),
    ];
    let state = Arc::new(AppState {
        integrations,
        sessions: session::Sessions::new(base.scheme() == "https"),
        cards,
        streams,
        origin: origin_of(&base),
        form_origins: form_origins.join(" "),
        base: base.clone(),
    });
    let app = routes::router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Running {
        url: base,
        stop: Some(stop),
        server,
        background,
        store,
        provider,
        _dir: dir,
    })
}
