//! Images and files on their way through an adapter: an attachment's bytes read from the
//! local path or fetched from the http(s) URL its handler named (and from nowhere else),
//! within a size limit; media a platform sent us saved into the media directory under a
//! name that cannot escape it; and the one-file `multipart/form-data` body WeCom's upload
//! endpoints take.

use std::path::{Path, PathBuf};

use reqwest::{Client, Url};

use super::{SendError, call};
use crate::http::{error_chain, shown_url};

/// The most an attachment may weigh: WeCom's largest upload, a file of 20 MB (上传临时素材,
/// developer.work.weixin.qq.com/document/path/90253: "普通文件（file）：20MB").
pub const MAX_MEDIA_BYTES: u64 = 20 * 1024 * 1024;

/// An attachment's bytes, and what it is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub bytes: Vec<u8>,
    /// The file name the recipient sees: the caller's, else the source's last part.
    pub name: String,
    pub content_type: String,
}

/// The bytes `source` names: an absolute local path, or an http(s) URL fetched with
/// `client`. More than `max` bytes is refused, without reading them all. A missing file or
/// a refused URL is permanent; a fetch that may pass (a timeout, a 5xx) is retried.
pub async fn load(client: &Client, source: &str, max: u64) -> Result<Media, SendError> {
    let source = source.trim();
    if source.starts_with("http://") || source.starts_with("https://") {
        let url = Url::parse(source).map_err(|e| {
            SendError::Permanent(format!("attachment URL {source:?} does not parse: {e}"))
        })?;
        return fetch(client, url, max).await;
    }
    let path = Path::new(source);
    if !path.is_absolute() {
        return Err(SendError::Permanent(format!(
            "attachment source {source:?} is neither an absolute path nor an http(s) URL"
        )));
    }
    let unreadable = |e: std::io::Error| {
        SendError::Permanent(format!("cannot read attachment {}: {e}", path.display()))
    };
    let size = tokio::fs::metadata(path).await.map_err(unreadable)?.len();
    if size > max {
        return Err(too_large(&path.display().to_string(), size, max));
    }
    let bytes = tokio::fs::read(path).await.map_err(unreadable)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Media {
        content_type: content_type_for(&name).to_string(),
        name: safe_file_name(&name),
        bytes,
    })
}

async fn fetch(client: &Client, url: Url, max: u64) -> Result<Media, SendError> {
    let shown = shown_url(&url);
    let what = format!("fetching attachment {shown}");
    let response = call::send(client.get(url.clone()), &what).await?;
    call::check_status(response.status(), &what)?;
    let header_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .filter(|v| !v.is_empty() && v != "application/octet-stream");
    let bytes = read_limited(response, max, &shown).await?;
    let name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .map(percent_decoded)
        .unwrap_or_default();
    Ok(Media {
        content_type: header_type.unwrap_or_else(|| content_type_for(&name).to_string()),
        name: safe_file_name(&name),
        bytes,
    })
}

/// A response's body, refused past `max` bytes (said by Content-Length or found while
/// reading), so a wrong URL cannot fill the memory.
pub async fn read_limited(
    mut response: reqwest::Response,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, SendError> {
    if let Some(length) = response.content_length()
        && length > max
    {
        return Err(too_large(what, length, max));
    }
    let mut bytes = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|e| SendError::Retry {
            reason: format!("reading {what}: {}", error_chain(e)),
            after: None,
        })?;
        let Some(chunk) = chunk else {
            return Ok(bytes);
        };
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(what, (bytes.len() + chunk.len()) as u64, max));
        }
        bytes.extend_from_slice(&chunk);
    }
}

fn too_large(what: &str, size: u64, max: u64) -> SendError {
    SendError::Permanent(format!(
        "{what} is {size} bytes or more, over the {max} bytes an attachment may have"
    ))
}

fn percent_decoded(text: &str) -> String {
    let bytes = crate::http::percent_decode(text).unwrap_or_else(|kept| kept);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The MIME type a file name suggests; platforms show or refuse media by it.
pub fn content_type_for(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" | "log" | "md" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "mp4" => "video/mp4",
        "amr" => "audio/amr",
        _ => "application/octet-stream",
    }
}

/// Which image format the bytes are, by their signature, for platforms that take only
/// some: PNG (`89 50 4E 47 0D 0A 1A 0A`) or JPEG (`FF D8 FF`).
pub fn image_format(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpg")
    } else {
        None
    }
}

/// `name` made safe to be a file name in one directory and a multipart header value: its
/// last path part, without control characters, quotes or backslashes, not hidden, not
/// empty, at most 120 characters (the extension kept).
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | '\\' | '/' | ':' | '*' | '?' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        return "file".into();
    }
    const MAX_CHARS: usize = 120;
    if cleaned.chars().count() <= MAX_CHARS {
        return cleaned;
    }
    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if ext.chars().count() <= 10 => (stem, format!(".{ext}")),
        _ => (cleaned.as_str(), String::new()),
    };
    let keep = MAX_CHARS - extension.chars().count();
    format!("{}{extension}", stem.chars().take(keep).collect::<String>())
}

/// The file name a `Content-Disposition` header gives (`attachment; filename="x.jpg"`),
/// made safe.
pub fn disposition_file_name(value: &str) -> Option<String> {
    let (_, rest) = value.split_once("filename=")?;
    let rest = rest.trim();
    let name = match rest.strip_prefix('"') {
        Some(quoted) => quoted.split('"').next().unwrap_or_default(),
        None => rest.split(';').next().unwrap_or_default().trim(),
    };
    (!name.is_empty()).then(|| safe_file_name(name))
}

/// Writes `bytes` as `dir/name` (the directory made if needed), through a temporary file
/// renamed into place, so a reader never finds half a file and a repeat replaces it
/// whole. `name` must come from [`safe_file_name`].
pub async fn save(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.{:08x}.part", fastrand::u32(..)));
    tokio::fs::write(&partial, bytes).await?;
    if let Err(error) = tokio::fs::rename(&partial, &path).await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    Ok(path)
}

/// A `multipart/form-data` body with one file: its Content-Type header value and its
/// bytes. The filename goes as UTF-8, as browsers send it (WeCom shows it as the file's
/// name: "filename标识文件展示的名称", 90253), so it must come from [`safe_file_name`].
pub fn multipart(field: &str, media: &Media) -> (String, Vec<u8>) {
    let boundary = format!("----tapwire{:016x}", fastrand::u64(..));
    let mut body = Vec::with_capacity(media.bytes.len() + 256);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{}\"; filelength={}\r\nContent-Type: {}\r\n\r\n",
            media.name,
            media.bytes.len(),
            media.content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(&media.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_their_directory_and_readable() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x\\周报.pdf"), "周报.pdf");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("a\"b\r\n.png"), "a_b__.png");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name(".."), "file");
        let long = format!("{}.xlsx", "长".repeat(200));
        let cut = safe_file_name(&long);
        assert_eq!(cut.chars().count(), 120);
        assert!(cut.ends_with(".xlsx"));
        assert_eq!(
            disposition_file_name("attachment; filename=\"MEDIA_ID.jpg\""),
            Some("MEDIA_ID.jpg".into())
        );
        assert_eq!(
            disposition_file_name("attachment; filename=a.amr; size=3"),
            Some("a.amr".into())
        );
        assert_eq!(disposition_file_name("inline"), None);
    }

    #[test]
    fn images_are_known_by_their_signature() {
        assert_eq!(image_format(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(image_format(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpg"));
        assert_eq!(image_format(b"GIF89a"), None);
        assert_eq!(content_type_for("x.JPG"), "image/jpeg");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }

    #[test]
    fn the_multipart_body_has_one_named_file() {
        let media = Media {
            bytes: b"mytext".to_vec(),
            name: "wework.txt".into(),
            content_type: "text/plain".into(),
        };
        let (content_type, body) = multipart("media", &media);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("boundary");
        let body = String::from_utf8(body).expect("utf8");
        assert_eq!(
            body,
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"wework.txt\"; filelength=6\r\nContent-Type: text/plain\r\n\r\nmytext\r\n--{boundary}--\r\n"
            )
        );
    }

    #[tokio::test]
    async fn sources_are_absolute_paths_or_urls_and_limited() {
        let client = Client::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nxx").expect("write");
        let source = path.to_string_lossy().to_string();
        let media = load(&client, &source, 100).await.expect("loaded");
        assert_eq!(
            (media.name.as_str(), media.content_type.as_str()),
            ("a.png", "image/png")
        );
        assert!(matches!(
            load(&client, &source, 5).await,
            Err(SendError::Permanent(m)) if m.contains("over the 5 bytes")
        ));
        assert!(matches!(
            load(&client, "a.png", 100).await,
            Err(SendError::Permanent(m)) if m.contains("absolute path")
        ));
        assert!(matches!(
            load(&client, "/surely/not/here.png", 100).await,
            Err(SendError::Permanent(m)) if m.contains("cannot read")
        ));

        // Over HTTP: the name from the URL, the type from the answer, the size capped.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new()
            .route(
                "/files/{name}",
                axum::routing::get(|| async {
                    (
                        [(reqwest::header::CONTENT_TYPE, "application/pdf")],
                        vec![7u8; 50],
                    )
                }),
            )
            .route(
                "/gone",
                axum::routing::get(|| async { reqwest::StatusCode::NOT_FOUND }),
            )
            .route(
                "/busy",
                axum::routing::get(|| async { reqwest::StatusCode::SERVICE_UNAVAILABLE }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://{addr}/files/%E5%91%A8%E6%8A%A5.pdf?sig=secret");
        let fetched = load(&client, &url, 100).await.expect("fetched");
        assert_eq!(fetched.name, "周报.pdf");
        assert_eq!(fetched.content_type, "application/pdf");
        assert_eq!(fetched.bytes.len(), 50);
        let big = load(&client, &url, 10).await;
        assert!(
            matches!(&big, Err(SendError::Permanent(m)) if m.contains("over the 10") && !m.contains("secret")),
            "{big:?}"
        );
        assert!(matches!(
            load(&client, &format!("http://{addr}/gone"), 10).await,
            Err(SendError::Permanent(_))
        ));
        assert!(matches!(
            load(&client, &format!("http://{addr}/busy"), 10).await,
            Err(SendError::Retry { .. })
        ));
    }

    #[tokio::test]
    async fn saving_replaces_a_file_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let media = dir.path().join("media");
        let path = save(&media, "a.jpg", b"one").await.expect("saved");
        assert_eq!(path, media.join("a.jpg"));
        save(&media, "a.jpg", b"two").await.expect("saved");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(&media)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["a.jpg"], "no partial file left behind");
    }
}
