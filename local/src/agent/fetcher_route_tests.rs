//! The three write routes of the fetcher, with a symbolic link out of the sandbox planted by
//! hand beforehand (as an archive could if its links were not checked): a URI download named
//! like a link to a file, a `.gz` decompressed onto such a link, and an `output_file` below a
//! link to a directory. None of them writes outside the sandbox.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Serves `body` with a 200 to every connection on a loopback port; returns the base URL.
async fn serve(body: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(body).await;
            });
        }
    });
    format!("http://{addr}")
}

fn gz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn fetcher(cache: &Path) -> Fetcher {
    let tls = Arc::new(mesos_sdk::client::tls_client_config(&[]).unwrap());
    Fetcher::new(
        super::FetcherCache::new(cache.to_path_buf(), 1 << 30),
        tls,
        FetcherLimits::default(),
    )
}

fn planted(sandbox: &Path, name: &str, target: &Path) {
    std::os::unix::fs::symlink(target, sandbox.join(name)).unwrap();
}

#[tokio::test]
async fn no_route_writes_through_a_planted_link() {
    let outside = tempfile::tempdir().unwrap();
    let sandbox = tempfile::tempdir().unwrap();
    let sources = tempfile::tempdir().unwrap();
    let fetcher = fetcher(&sources.path().join("cache"));
    let base = serve(b"downloaded").await;
    let never = std::future::pending::<()>;

    // Route 1: a download whose name is a link to a file outside.
    planted(
        sandbox.path(),
        "payload.txt",
        &outside.path().join("payload.txt"),
    );
    let err = fetcher
        .fetch_all(
            &[uri(&format!("{base}/payload.txt"), None)],
            sandbox.path(),
            never(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("'payload.txt' passes through a symbolic link"),
        "{err}"
    );

    // Route 2: a `.gz` decompressed onto a link to a file outside.
    planted(sandbox.path(), "data", &outside.path().join("data"));
    let archive = sources.path().join("data.gz");
    std::fs::write(&archive, gz(b"decompressed")).unwrap();
    let err = fetcher
        .fetch_all(
            &[uri(archive.to_str().unwrap(), None)],
            sandbox.path(),
            never(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("'data' passes through a symbolic link"),
        "{err}"
    );

    // Route 3: an `output_file` below a link to a directory outside (download and cache).
    planted(sandbox.path(), "dir", outside.path());
    for cache in [false, true] {
        let through = Uri {
            cache: Some(cache),
            ..uri(&format!("{base}/x"), Some("dir/sub/x"))
        };
        let err = fetcher
            .fetch_all(&[through], sandbox.path(), never())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("'dir/sub/x' passes through a symbolic link"),
            "{err}"
        );
    }

    let written: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert!(written.is_empty(), "{written:?}");
    // The links themselves are left as they were.
    let mut names: Vec<String> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // (The fetched `data.gz` itself is kept, as archives are.)
    assert_eq!(names, ["data", "data.gz", "dir", "payload.txt"]);
}
