//! ADD through `kiln build`: local tar archives extracted by content
//! (gzip, bzip2, xz, plain), URLs downloaded from a loopback server (mode
//! 600, Last-Modified, `--checksum`), checked inside the built image.

use crate::build_check::*;
use crate::file_server::{FileServer, LAST_MODIFIED_EPOCH, sha256_hex};
use crate::require_root;
use crate::util::*;

/// A tar archive with `d/f.txt` (uid 1234) holding `content`.
fn tar_with(content: &str) -> Vec<u8> {
    tar_in("d", content)
}

/// A tar archive with `DIR/f.txt` (uid 1234, DIR mode 0750) holding
/// `content`.
fn tar_in(dir: &str, content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_size(0);
    h.set_uid(1234);
    h.set_gid(1234);
    h.set_mtime(0);
    b.append_data(&mut h, format!("{dir}/"), std::io::empty())
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o640);
    h.set_size(content.len() as u64);
    h.set_uid(1234);
    h.set_gid(1234);
    h.set_mtime(0);
    b.append_data(&mut h, format!("{dir}/f.txt"), content.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn add_extracts_local_tar_archives_by_content() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    write(c, "a.tar.gz", &gzip(&tar_with("gz\n")));
    write(c, "b.tar.bz2", &bzip2(&tar_with("bz2\n")));
    write(c, "c.tar.xz", &xz(&tar_with("xz\n")));
    write(c, "plain.tar", &tar_with("plain\n"));
    write(c, "disguised.bin", &gzip(&tar_with("disguised\n")));
    let not_a_tar = gzip(b"just text\n");
    write(c, "text.gz", &not_a_tar);
    write(c, "parts/one.tar", &tar_in("one", "1\n"));
    write(c, "parts/two.tar", &tar_in("two", "2\n"));
    write(
        c,
        "Dockerfile",
        b"FROM busybox\n\
          ADD a.tar.gz /gz\n\
          ADD b.tar.bz2 /bz2/\n\
          ADD c.tar.xz /xz/\n\
          ADD plain.tar /plain/\n\
          ADD disguised.bin /disguised/\n\
          ADD text.gz /text/\n\
          ADD --chown=100:200 a.tar.gz /owned/\n\
          ADD parts/*.tar /merged\n\
          ADD --unpack=false a.tar.gz /packed/\n\
          COPY a.tar.gz /copied/\n",
    );
    build(&root, c, "added");
    assert_eq!(
        sh(
            &root,
            "added",
            "cat /gz/d/f.txt /bz2/d/f.txt /xz/d/f.txt /plain/d/f.txt /disguised/d/f.txt \
             /merged/one/f.txt /merged/two/f.txt; ls /text /packed /copied"
        ),
        "gz\nbz2\nxz\nplain\ndisguised\n1\n2\n/copied:\na.tar.gz\n\n/packed:\na.tar.gz\n\n/text:\ntext.gz\n"
    );
    // Archive entries keep their owner and mode unless --chown says
    // otherwise; a compressed non-archive is copied as it is.
    assert_eq!(
        stat(
            &root,
            "added",
            &[
                "/gz/d",
                "/gz/d/f.txt",
                "/owned",
                "/owned/d/f.txt",
                "/text/text.gz"
            ]
        ),
        [
            "750 1234:1234 directory",
            "640 1234:1234 regular file",
            "755 100:200 directory",
            "640 100:200 regular file",
            "644 0:0 regular file"
        ]
    );
    assert_eq!(
        sh(&root, "added", "wc -c < /text/text.gz").trim(),
        not_a_tar.len().to_string()
    );
}

#[test]
fn add_downloads_urls_with_checksums() {
    require_root!();
    let root = TestRoot::with_busybox();
    let hello = b"hello over http\n".to_vec();
    let archive = gzip(&tar_with("remote\n"));
    let server = FileServer::start(vec![
        ("/files/hello.txt", hello.clone()),
        ("/files/archive.tar.gz", archive.clone()),
        ("/", b"index\n".to_vec()),
    ]);
    let sum = format!("sha256:{}", sha256_hex(&hello));
    let hello_url = server.url("/files/hello.txt");
    let ctx = build_context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             ADD {hello_url} /dl/\n\
             ADD {hello_url} /renamed\n\
             ADD --checksum={sum} {hello_url} /checked\n\
             ADD --chmod=755 {hello_url} /exec\n\
             ADD {archive_url} /remote/\n\
             ADD --unpack=true {archive_url} /unpacked/\n\
             ADD {root_url} /unnamed/\n",
            archive_url = server.url("/files/archive.tar.gz"),
            root_url = server.url("/"),
        ),
    )]);
    build(&root, ctx.path(), "downloaded");
    assert_eq!(
        sh(
            &root,
            "downloaded",
            "cat /dl/hello.txt /renamed /checked; cmp /remote/archive.tar.gz /dl/hello.txt >/dev/null || echo differs"
        ),
        "hello over http\nhello over http\nhello over http\ndiffers\n"
    );
    // Downloads are mode 600, owned by root; remote archives are not
    // extracted.
    assert_eq!(
        stat(
            &root,
            "downloaded",
            &[
                "/dl/hello.txt",
                "/renamed",
                "/exec",
                "/remote/archive.tar.gz"
            ]
        ),
        [
            "600 0:0 regular file",
            "600 0:0 regular file",
            "755 0:0 regular file",
            "600 0:0 regular file"
        ]
    );
    assert_eq!(
        sh(&root, "downloaded", "wc -c < /remote/archive.tar.gz").trim(),
        archive.len().to_string()
    );
    // `--unpack=true` extracts a remote archive; a URL without a file
    // name gives `__unnamed__`, as BuildKit.
    assert_eq!(
        sh(
            &root,
            "downloaded",
            "cat /unpacked/d/f.txt /unnamed/__unnamed__"
        ),
        "remote\nindex\n"
    );
    // The server's Last-Modified is the file's mtime.
    assert_eq!(
        sh(&root, "downloaded", "stat -c %Y /dl/hello.txt").trim(),
        LAST_MODIFIED_EPOCH.to_string()
    );

    // A wrong checksum fails the build, naming both digests.
    let wrong = format!("sha256:{}", sha256_hex(b"something else"));
    let bad = build_context(&[(
        "Dockerfile",
        &format!("FROM busybox\nADD --checksum={wrong} {hello_url} /x\n"),
    )]);
    let err = build_fails(&root, bad.path(), &[]);
    assert!(err.contains("checksum"), "{err}");
    assert!(err.contains(&wrong) && err.contains(&sum), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
    // So does a missing file, with its status.
    let missing = build_context(&[(
        "Dockerfile",
        &format!("FROM busybox\nADD {} /x\n", server.url("/nope")),
    )]);
    let err = build_fails(&root, missing.path(), &[]);
    assert!(err.contains("404"), "{err}");
    // And a server that is not there, with the cause.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/x", closed.local_addr().unwrap());
    drop(closed);
    let unreachable = build_context(&[("Dockerfile", &format!("FROM busybox\nADD {dead} /x\n"))]);
    let err = build_fails(&root, unreachable.path(), &[]);
    assert!(err.contains(&dead), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
}
