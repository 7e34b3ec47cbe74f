//! The caller identity a client certificate carries under mutual TLS: its
//! SPIFFE ID (a `spiffe://` URI SAN) or, failing that, its first DNS SAN. It
//! becomes the caller's token-store namespace, so one workload can never reach
//! the tokens another registered.

use rustls::pki_types::CertificateDer;

/// Longest identity accepted (SPIFFE IDs are at most 2048 bytes; DNS names 253).
const MAX_IDENTITY_LEN: usize = 2048;

/// The identity of the leaf certificate `cert`, if it names one.
pub fn peer_identity(cert: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let spiffe = cert
        .valid_uri_names()
        .find(|uri| uri.starts_with("spiffe://"));
    let name = spiffe.or_else(|| cert.valid_dns_names().next())?;
    // Printable ASCII only: the namespace is part of every store key, whose
    // parts are separated by a control character.
    let usable = !name.is_empty()
        && name.len() <= MAX_IDENTITY_LEN
        && name.bytes().all(|b| b.is_ascii_graphic());
    usable.then(|| name.to_owned())
}
