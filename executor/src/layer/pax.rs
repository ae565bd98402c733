//! Writing layer entries as a PAX tar, deterministically: the same entries
//! give the same bytes. Paths and link names that do not fit the ustar
//! header, and extended attributes, go into a PAX extended header
//! (`SCHILY.xattr.*`, as docker and BuildKit write them). User and group
//! names are left empty; times are whole seconds.

use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

use tar::{Builder, EntryType, Header};

use super::changes::{Change, Kind};

/// A PAX record: "<len> <key>=<value>\n", where len counts the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = Vec::with_capacity(len);
    r.extend_from_slice(len.to_string().as_bytes());
    r.push(b' ');
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn fits_name(name: &[u8]) -> bool {
    name.len() <= 100
}

fn truncate(name: &[u8], n: usize) -> &[u8] {
    &name[..name.len().min(n)]
}

/// Appends one change. `mtime_cap` clamps times (SOURCE_DATE_EPOCH).
pub(crate) fn append<W: Write>(
    builder: &mut Builder<W>,
    change: &Change,
    mtime_cap: Option<i64>,
) -> io::Result<()> {
    let mut name = change.path.as_os_str().as_bytes().to_vec();
    if change.kind == Kind::Dir {
        name.push(b'/');
    }
    let link: Option<Vec<u8>> = match &change.kind {
        Kind::Symlink(t) | Kind::Hardlink(t) => Some(t.as_os_str().as_bytes().to_vec()),
        _ => None,
    };
    let mut records = Vec::new();
    if !fits_name(&name) {
        records.extend(pax_record(b"path", &name));
    }
    if let Some(l) = &link
        && !fits_name(l)
    {
        records.extend(pax_record(b"linkpath", l));
    }
    for (k, v) in &change.xattrs {
        let key = [b"SCHILY.xattr.".as_slice(), k.as_bytes()].concat();
        records.extend(pax_record(&key, v));
    }
    let mtime = change.mtime.max(0);
    let mtime = mtime_cap.map_or(mtime, |cap| mtime.min(cap.max(0))) as u64;
    if !records.is_empty() {
        let mut x = Header::new_ustar();
        let base = change
            .path
            .file_name()
            .map(|n| n.as_bytes().to_vec())
            .unwrap_or_default();
        let xname = [b"PaxHeaders.0/".as_slice(), &base].concat();
        set_name_bytes(&mut x, truncate(&xname, 100))?;
        x.set_entry_type(EntryType::XHeader);
        x.set_mode(0o644);
        x.set_uid(0);
        x.set_gid(0);
        x.set_mtime(mtime);
        x.set_size(records.len() as u64);
        x.set_cksum();
        builder.append(&x, records.as_slice())?;
    }
    let mut h = Header::new_ustar();
    set_name_bytes(&mut h, truncate(&name, 100))?;
    h.set_mode(change.mode);
    h.set_uid(change.uid as u64);
    h.set_gid(change.gid as u64);
    h.set_mtime(mtime);
    h.set_size(0);
    let (ty, size) = match &change.kind {
        Kind::Dir => (EntryType::Directory, 0),
        Kind::File => (EntryType::Regular, change.size),
        Kind::Whiteout => (EntryType::Regular, 0),
        Kind::Symlink(_) => (EntryType::Symlink, 0),
        Kind::Hardlink(_) => (EntryType::Link, 0),
        Kind::Char(_) => (EntryType::Char, 0),
        Kind::Block(_) => (EntryType::Block, 0),
        Kind::Fifo => (EntryType::Fifo, 0),
    };
    h.set_entry_type(ty);
    if let Some(l) = &link {
        set_link_bytes(&mut h, truncate(l, 100))?;
    }
    if let Kind::Char(dev) | Kind::Block(dev) = change.kind {
        h.set_device_major(libc::major(dev))?;
        h.set_device_minor(libc::minor(dev))?;
    }
    h.set_size(size);
    h.set_cksum();
    match (&change.kind, &change.source) {
        (Kind::File, Some(src)) => {
            let file = std::fs::File::open(src)?;
            // The size in the header is what was seen; a file that changed
            // since is an error, not a corrupt archive.
            // Large reads: io::copy then moves whole buffers.
            let mut reader = io::BufReader::with_capacity(1 << 20, file.take(size));
            let mut counted = CountingReader {
                inner: &mut reader,
                n: 0,
            };
            builder.append(&h, &mut counted)?;
            if counted.n != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} changed while it was archived", src.display()),
                ));
            }
            Ok(())
        }
        _ => builder.append(&h, io::empty()),
    }
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    n: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn set_name_bytes(h: &mut Header, name: &[u8]) -> io::Result<()> {
    let ustar = h
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("not a ustar header"))?;
    ustar.name = [0; 100];
    ustar.name[..name.len()].copy_from_slice(name);
    Ok(())
}

fn set_link_bytes(h: &mut Header, link: &[u8]) -> io::Result<()> {
    let ustar = h
        .as_ustar_mut()
        .ok_or_else(|| io::Error::other("not a ustar header"))?;
    ustar.linkname = [0; 100];
    ustar.linkname[..link.len()].copy_from_slice(link);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        assert_eq!(pax_record(b"path", b"a"), b"9 path=a\n");
        let r = pax_record(b"k", &[b'x'; 95]);
        assert!(r.starts_with(b"102 k="));
        assert_eq!(r.len(), 102);
    }
}
