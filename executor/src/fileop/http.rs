//! ADD of an http(s) URL: the file is streamed into a staging directory
//! (hashing while writing), checked against `--checksum`, given mode 0600
//! and the server's `Last-Modified` as mtime (the Unix epoch without one),
//! as BuildKit's http source does; [`copy`](super::copy) then places it
//! like any other file. The digest is what a cache key of the step uses.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::{FileOpError, meta};

/// A URL fetched into a staging directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub url: String,
    /// Staging directory holding the file (the caller owns and removes it).
    pub dir: PathBuf,
    /// The file's name: the last segment of the URL path, `__unnamed__`
    /// when there is none. It is also its name in a destination directory.
    pub file_name: String,
    /// sha256 of the content.
    pub digest: Digest,
    pub size: u64,
    /// The server's `Last-Modified`, the file's mtime.
    pub last_modified: Option<SystemTime>,
}

/// Parses `--checksum=sha256:<hex>`.
pub fn parse_checksum(value: &str) -> Result<Digest, FileOpError> {
    let invalid = || FileOpError::InvalidChecksum {
        value: value.to_owned(),
    };
    let d = Digest::from_str(value).map_err(|_| invalid())?;
    if d.algorithm().as_ref() != "sha256" {
        return Err(invalid());
    }
    Ok(d)
}

/// The file name BuildKit's Dockerfile frontend gives a URL source.
pub(crate) fn url_file_name(url: &reqwest::Url) -> String {
    // Go's `path.Base`: the last non-empty segment.
    let last = url
        .path_segments()
        .and_then(|mut s| s.rfind(|c| !c.is_empty()).map(str::to_owned))
        .unwrap_or_default();
    let decoded = percent_encoding::percent_decode_str(&last)
        .decode_utf8_lossy()
        .into_owned();
    if decoded.is_empty() || decoded == "." || decoded == ".." || decoded.contains('/') {
        "__unnamed__".to_owned()
    } else {
        decoded
    }
}

/// Downloads `url` into `staging` (an existing, private directory), verifying
/// `checksum` when given. Only `http` and `https` URLs are accepted.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    staging: &Path,
    checksum: Option<&Digest>,
) -> Result<Downloaded, FileOpError> {
    let derr = |e: Box<dyn std::error::Error + Send + Sync>| FileOpError::Download {
        url: url.to_owned(),
        source: e,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| derr(Box::new(e)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(derr(
            format!("unsupported URL scheme {:?}", parsed.scheme()).into(),
        ));
    }
    let file_name = url_file_name(&parsed);
    let resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| derr(Box::new(e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FileOpError::DownloadStatus {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());

    let tmp = staging.join(format!(".{}.part", std::process::id()));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .await
        .map_err(FileOpError::io("create", &tmp))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut resp = resp;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(derr(Box::new(e)));
            }
        };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(FileOpError::io("write", &tmp))?;
    }
    file.flush().await.map_err(FileOpError::io("write", &tmp))?;
    drop(file);
    let digest = Digest::from_str(&format!("sha256:{}", hex::encode(hasher.finalize())))
        .expect("a sha256 hex digest is a valid digest");
    if let Some(expected) = checksum
        && expected != &digest
    {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(FileOpError::ChecksumMismatch {
            url: url.to_owned(),
            expected: expected.to_string(),
            actual: digest.to_string(),
        });
    }
    meta::chmod(&tmp, 0o600)?;
    meta::set_time(&tmp, last_modified.unwrap_or(SystemTime::UNIX_EPOCH))?;
    let path = staging.join(&file_name);
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(FileOpError::io("rename", &path))?;
    tracing::debug!(url, %digest, size, "downloaded");
    Ok(Downloaded {
        url: url.to_owned(),
        dir: staging.to_path_buf(),
        file_name,
        digest,
        size,
        last_modified: last_modified.map(|t| {
            // Whole seconds, as the header carries them.
            let secs = t
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_as_buildkit() {
        let n = |u: &str| url_file_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(n("http://h/a/b/tool.tar.gz?x=1"), "tool.tar.gz");
        assert_eq!(n("http://h/"), "__unnamed__");
        assert_eq!(n("http://h"), "__unnamed__");
        assert_eq!(n("http://h/dir/"), "dir");
        assert_eq!(n("http://h/a%20b"), "a b");
    }

    #[test]
    fn checksum_parsing() {
        let hexd = "a".repeat(64);
        assert!(parse_checksum(&format!("sha256:{hexd}")).is_ok());
        assert!(parse_checksum("sha256:zz").is_err());
        assert!(parse_checksum("md5:abc").is_err());
    }
}
