//! Command line: `serve` (the default), `dev` (embedded issuer), `check-config`, `lambda` (the
//! process is the Lambda function; also chosen when the binary is started as `bootstrap`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use session_authorizer::app::reload::ConfigSource;
use session_authorizer::app::startup::Application;
use session_authorizer::config::Config;
use session_authorizer::front_door::lambda::runtime::{self, RuntimeApi};
use session_authorizer::observe::logging;

// mimalloc: fewer cycles per small allocation than glibc's malloc on the request path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "session-authorizer", version, about = "SuperTokens session authorizer for API gateways")]
struct Cli {
    /// Configuration file (TOML) [default: config.toml]; SESSION_AUTHORIZER__<SECTION>__<KEY>
    /// variables override it. `lambda` also runs without one unless this option names it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the configuration file (the default).
    Serve,
    /// Serve on the embedded default: an in-process issuer instead of a SuperTokens core. With
    /// --config, the file's routes, claims and headers are used (its core settings replaced).
    #[cfg(feature = "dev-issuer")]
    Dev {
        /// Address of the HTTP listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Address of the gRPC (Envoy ext_authz) listener.
        #[arg(long, default_value = "127.0.0.1:9191")]
        grpc_listen: std::net::SocketAddr,
    },
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Run as the AWS Lambda function itself (Lambda Runtime API): the events and answers of
    /// POST /authorize, "Unauthorized" as the function error API Gateway turns into a 401.
    Lambda,
}

const DEFAULT_CONFIG: &str = "config.toml";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = cli.config.as_deref().unwrap_or(Path::new(DEFAULT_CONFIG));
    let command = cli
        .command
        .unwrap_or_else(|| if started_as_bootstrap() { Command::Lambda } else { Command::Serve });
    match command {
        Command::Serve => serve(config).await,
        #[cfg(feature = "dev-issuer")]
        Command::Dev { listen, grpc_listen } => dev_command::dev(listen, grpc_listen, cli.config.as_deref()).await,
        Command::CheckConfig => check_config(config),
        Command::Lambda => lambda(config, cli.config.is_some()).await,
    }
}

/// A custom Lambda runtime starts the file named `bootstrap` with no arguments: the binary
/// itself can be that file, so no shell script runs before it on a cold start.
fn started_as_bootstrap() -> bool {
    std::env::args_os()
        .next()
        .is_some_and(|arg0| Path::new(&arg0).file_name().is_some_and(|name| name == "bootstrap"))
}

async fn lambda(config: &Path, must_exist: bool) -> ExitCode {
    let api = match RuntimeApi::from_env() {
        Ok(api) => api,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let state = match runtime::init(config, must_exist) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e}");
            api.report_init_error(&e).await;
            return ExitCode::FAILURE;
        }
    };
    match runtime::run(state).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Lambda runtime stopped");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path, false) {
        Ok(config) => {
            // The certificate files are part of the configuration: unreadable, not PEM, or a key
            // that is not the certificate's would stop `serve`.
            let tls = &config.settings.server.tls;
            if let Err(e) = tls.enabled().then(|| session_authorizer::app::tls::prepare(tls)).transpose() {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            let assertion = &config.settings.assertion;
            if let (true, Some(key)) = (assertion.enabled, &assertion.key_file)
                && let Err(e) = session_authorizer::assertion::keys::SigningKey::from_file(assertion.algorithm, key)
            {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            println!("# {}: valid\n{}", path.display(), config.settings.to_redacted_toml());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: &Path) -> ExitCode {
    let source = ConfigSource::file(path);
    let loaded = match source.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = &loaded.config.settings;
    let exporter = match logging::init(settings.server.log_format, &settings.telemetry) {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match Application::build_reloading(source, loaded).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(http = %app.address(), "session-authorizer listening");
    let result = app.run_until_stopped().await;
    if let Some(exporter) = exporter {
        // The spans of the last requests: the flush blocks, so not on a runtime worker.
        let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `dev`: the service on the embedded issuer (not in builds without the `dev-issuer` feature).
#[cfg(feature = "dev-issuer")]
mod dev_command {
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::ExitCode;

    use serde_json::json;
    use session_authorizer::app::reload::ConfigSource;
    use session_authorizer::app::startup::Application;
    use session_authorizer::config::Config;
    use session_authorizer::dev::{Issuer, MintOptions};
    use session_authorizer::front_door::lambda;
    use session_authorizer::observe::logging;
    use session_authorizer::settings::{CoreUrls, LogFormat, Settings};

    /// Routes of the dev server: `/admin/**` needs the `admin` role, so the printed Deny is real, and
    /// `/private/**` needs a session (as in `dev/config.toml`).
    const DEV_CONFIG: &str = r#"
    [[routes]]
    path = "/admin/**"
    session = "required"
    claims = [{ claim = "st-role", includes = "admin" }]

    [[routes]]
    path = "/private/**"
    session = "required"
    "#;

    /// `dev`: the embedded issuer instead of a core. With `--config FILE`, the file's routes, claims,
    /// headers and other settings are used, its core settings replaced by the issuer.
    pub async fn dev(listen: SocketAddr, grpc_listen: SocketAddr, config_file: Option<&Path>) -> ExitCode {
        // No trace export in dev: its spans would name a throwaway issuer's sessions.
        let _ = logging::init(LogFormat::Text, &Default::default());
        let issuer = match Issuer::new() {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let issuer_addr = match issuer.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let issuer_uri: CoreUrls = match format!("http://{issuer_addr}").parse() {
            Ok(uri) => uri,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        // None of these feed the compiled route policy; a reload of the file applies them again.
        let adjust = move |settings: &mut Settings| {
            settings.supertokens.connection_uri = issuer_uri.clone();
            settings.supertokens.api_key = Default::default();
            settings.server.http_listen = listen;
            settings.server.grpc_listen = grpc_listen;
            settings.server.log_format = LogFormat::Text;
            // No load balancer to wait for: Ctrl-C stops at once.
            settings.server.shutdown_delay_ms = 0;
        };
        let built = match config_file {
            Some(path) => {
                let source = ConfigSource::file(path).adjusted(adjust);
                match source.load() {
                    Ok(loaded) => Application::build_reloading(source, loaded).await,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            None => {
                let mut config = match Config::from_toml_str(DEV_CONFIG) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                adjust(&mut config.settings);
                Application::build(config).await
            }
        };
        let app = match built {
            Ok(a) => a,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = app.address();
        let mut claims = serde_json::Map::new();
        claims.insert("st-role".into(), json!({"v": ["user"], "t": 0}));
        claims.insert("st-ev".into(), json!({"v": true, "t": 0}));
        let valid = issuer.mint(&MintOptions {
            user_id: "dev-user".into(),
            claims: claims.clone(),
            ..Default::default()
        });
        let expired = issuer.mint(&MintOptions {
            user_id: "dev-user".into(),
            claims,
            ttl_secs: -60,
            ..Default::default()
        });
        let (Ok(valid), Ok(expired)) = (valid, expired) else {
            eprintln!("error: cannot mint dev tokens");
            return ExitCode::FAILURE;
        };
        let event = |path: &str, token: &str| {
            json!({
                "type": "REQUEST",
                "methodArn": format!("arn:aws:execute-api:us-east-1:123456789012:devapi/dev/GET{path}"),
                "httpMethod": "GET",
                "path": path,
                "headers": { "cookie": format!("sAccessToken={token}") },
            })
            .to_string()
        };
        println!("WARNING: dev mode: tokens come from an in-process issuer with a throwaway key. Never use it in production.");
        if let Some(path) = config_file {
            println!(
                "# settings from {} (routes, claims, headers, ...); its core settings are replaced by the embedded issuer",
                path.display()
            );
        }
        println!(
            "session-authorizer (dev) listening on http://{addr} (gRPC ext_authz on {}); embedded issuer JWKS at http://{issuer_addr}/.well-known/jwks.json",
            app.grpc_address()
        );
        // Each line is decided here first, by the same state the server serves, so that what is
        // printed is what the curl line will return with these routes.
        let lines = [
            ("a valid session of dev-user (role user) on /items", "/items", &valid),
            ("the same session, its access token expired", "/items", &expired),
            ("the valid session on /admin/users", "/admin/users", &valid),
            (
                "the SDK's refresh call with the expired token (the SDK's own routes, /auth/*, pass untouched)",
                "/auth/session/refresh",
                &expired,
            ),
        ];
        for (what, path, token) in lines {
            let body = event(path, token);
            let answer = lambda::authorize(app.state(), body.as_bytes()).await;
            println!("# {what}: {}", describe(&answer));
            println!("curl -s -w '\\n%{{http_code}}\\n' -X POST http://{addr}/authorize -H 'content-type: application/json' -d '{body}'");
        }
        println!(
            "# a whole session's life (sign-in, expiry, refresh, sign-out) with the real SDKs in a browser, through each real proxy: cargo test --test it real_app (docs/deploy.md)"
        );
        println!("# ready when JWKS is loaded: curl -s http://{addr}/readyz");
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// What `POST /authorize` answers, in words: the status, and what API Gateway makes of it.
    fn describe(answer: &Result<String, lambda::Refusal>) -> String {
        let Ok(text) = answer else {
            return match answer {
                Err(lambda::Refusal::Unauthorized) => {
                    "401 {\"message\":\"Unauthorized\"} (API Gateway answers 401; the frontend SDK refreshes)".into()
                }
                Err(other) => format!("an error: {other}"),
                Ok(_) => String::new(),
            };
        };
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let principal = v["principalId"].as_str().unwrap_or_default();
        match v["policyDocument"]["Statement"][0]["Effect"].as_str() {
            Some("Allow") if principal.is_empty() => {
                "200, Allow with principalId \"\" (no session: API Gateway lets it through without a user)".into()
            }
            Some("Allow") => format!("200, Allow with principalId {principal} (API Gateway lets it through as that user)"),
            Some("Deny") => format!(
                "200, Deny (API Gateway answers 403) with context.body {}",
                v["context"]["body"].as_str().unwrap_or_default()
            ),
            _ => format!("200, {text}"),
        }
    }
}
