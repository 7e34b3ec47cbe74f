//! Settings that expose tokens on the network, warned about loudly at every
//! start: an operator may mean them (a mesh that encrypts, a test bed), but
//! must never get them by accident.

use crate::config::{Config, Listen, UpstreamChoice};

/// One line per exposure in `config`: a gRPC listener beyond loopback that is
/// plaintext (callers' tokens and secrets cross it in clear, and any peer that
/// reaches it can manage clients) or TLS without client authentication (no
/// client CA, no caller tokens: encrypted, but open to any peer), and an
/// `http://` upstream not on this host.
pub(super) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let Listen::Tcp(addr) = &config.listen
        && !addr.ip().is_loopback()
    {
        match &config.tls {
            None => out.push(format!(
                "PLAINTEXT gRPC LISTENER ON {addr}: registration access tokens and client secrets cross \
                 the network unencrypted, and any peer that reaches it can manage its clients; \
                 configure --tls-cert/--tls-key with --tls-client-ca or --callers-file, or listen on loopback"
            )),
            Some(tls) if tls.files.client_ca.is_none() && config.callers.is_none() => {
                out.push(format!(
                    "UNAUTHENTICATED gRPC LISTENER ON {addr}: TLS hides the traffic, but any peer that \
                     reaches it can read every client's secret and manage its clients; \
                     add --tls-client-ca or --callers-file, or listen on loopback"
                ))
            }
            Some(_) => {}
        }
    }
    if let UpstreamChoice::Url(url) = &config.upstream
        && url.scheme() == "http"
        && !is_loopback(url)
    {
        out.push(format!(
            "PLAINTEXT UPSTREAM {}: registration access tokens and client secrets cross the network \
             unencrypted; use https:// (and --require-upstream-tls)",
            url.origin().ascii_serialization()
        ));
    }
    out
}

/// Whether `url` names this host: a loopback address or `localhost`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Callers;
    use crate::config::{ListenerTls, RawConfig};
    use crate::tls::ServerTlsFiles;

    fn config(listen: &str, upstream: &str) -> Config {
        let mut raw = RawConfig {
            listen: Some(listen.into()),
            upstream: Some(upstream.into()),
            ..RawConfig::default()
        };
        raw.token_store.backend = Some("memory".into());
        raw.validate().unwrap()
    }

    #[test]
    fn plaintext_beyond_loopback_is_warned_about() {
        let both = warnings(&config("0.0.0.0:50051", "http://auth.invalid"));
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[0].starts_with("PLAINTEXT gRPC LISTENER ON 0.0.0.0:50051"));
        assert!(both[1].starts_with("PLAINTEXT UPSTREAM http://auth.invalid"));
        for local in [
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://localhost:8080",
            "https://auth.invalid",
        ] {
            assert!(
                warnings(&config("127.0.0.1:50051", local)).is_empty(),
                "{local}"
            );
        }
        assert_eq!(
            warnings(&config("[::1]:50051", "https://auth.invalid")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn tls_without_client_authentication_beyond_loopback_is_warned_about() {
        let with_tls = |listen: &str, client_ca: Option<&str>, callers: bool| {
            let mut config = config(listen, "https://auth.invalid");
            config.tls = Some(ListenerTls {
                files: ServerTlsFiles {
                    cert: "cert.pem".into(),
                    key: "key.pem".into(),
                    client_ca: client_ca.map(Into::into),
                },
                reload_interval: std::time::Duration::from_secs(60),
            });
            if callers {
                config.callers = Some(std::sync::Arc::new(
                    Callers::parse(&"app=0123456789abcdef".into()).unwrap(),
                ));
            }
            warnings(&config)
        };
        let open = with_tls("0.0.0.0:50051", None, false);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].starts_with("UNAUTHENTICATED gRPC LISTENER ON 0.0.0.0:50051"));
        assert!(with_tls("0.0.0.0:50051", Some("ca.pem"), false).is_empty());
        assert!(with_tls("0.0.0.0:50051", None, true).is_empty());
        assert!(with_tls("127.0.0.1:50051", None, false).is_empty());
    }
}
