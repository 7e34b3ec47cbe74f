//! Reading files an operator names (settings, keyrings, caller lists, PEM
//! bundles) with a size cap, so a path to a device or a huge file is an error
//! naming the setting, never a hang. Below both `config` and `tls`, which
//! both read such files.

/// Reads at most `max` bytes of `path`; a longer file (or an endless one such
/// as a device) is an error, never a hang or an allocation it asked for.
pub fn read_limited(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(out)
}
