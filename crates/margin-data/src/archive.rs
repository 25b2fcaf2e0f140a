//! The workspace's one zip reader (image-folder zips, `.npz`, Omniglot's `all_runs.zip`),
//! from a file or from bytes, with every member's declared sizes checked before a byte of
//! it is read.
//!
//! Why a wrapper: the `zip` crate believes the sizes a central directory declares. A
//! member is refused when its compressed size exceeds the archive, when its uncompressed
//! size is more than deflate can produce from its compressed size
//! ([`DEFLATE_MAX_RATIO`]) or above [`MAX_MEMBER_BYTES`], and a member is never read past
//! the size it declares (a zip bomb stops there). Opening the archive and reading a member
//! run inside [`guarded`], so a bug in `zip`/`flate2` is a [`DataError`] naming the file.

use std::io::{Read, Seek};
use std::path::Path;

use crate::DataError;
use crate::limits::{DEFLATE_MAX_RATIO, MAX_MEMBER_BYTES, guarded};

/// What a zip archive can be read from: a file or bytes in memory (`Send`, so the lazy
/// loader's worker threads can share an open archive behind a lock).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// An open zip archive.
pub struct Archive {
    what: String,
    len: u64,
    zip: zip::ZipArchive<Box<dyn ReadSeek>>,
}

/// Which member of an [`Archive`].
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// The `k`-th entry of the central directory.
    Index(usize),
    /// The entry with this exact name.
    Name(&'a str),
}

/// One member being read: its name, declared size and a reader that stops at that size.
pub struct Member<'a> {
    /// Its path inside the archive.
    pub name: String,
    /// Whether it is a folder entry.
    pub is_dir: bool,
    /// Its declared uncompressed size (checked against the compressed data and the cap).
    pub size: u64,
    /// Its content, never more than `size` bytes.
    pub reader: &'a mut dyn Read,
}

impl Archive {
    /// Opens the zip file at `path`.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let len = f.metadata().map_err(|e| DataError::io(path, e))?.len();
        Self::new(Box::new(std::io::BufReader::new(f)), len, path.display().to_string())
    }

    /// Reads a zip archive held in memory; `what` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Self, DataError> {
        let len = bytes.len() as u64;
        Self::new(Box::new(std::io::Cursor::new(bytes)), len, what.to_string())
    }

    fn new(reader: Box<dyn ReadSeek>, len: u64, what: String) -> Result<Self, DataError> {
        let zip = guarded(&what, || {
            zip::ZipArchive::new(reader).map_err(|e| DataError::Format { path: what.clone(), reason: format!("not a readable zip archive: {e}") })
        })?;
        Ok(Archive { what, len, zip })
    }

    /// The archive's name in messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.zip.len()
    }

    /// Whether the archive has no entry.
    pub fn is_empty(&self) -> bool {
        self.zip.len() == 0
    }

    /// Entry names, in central-directory order.
    pub fn names(&self) -> Vec<String> {
        (0..self.zip.len()).filter_map(|k| self.zip.name_for_index(k).map(str::to_string)).collect()
    }

    /// Reads one member through `f`, after checking its declared sizes; `f` runs inside
    /// [`guarded`] (decompression happens as it reads).
    pub fn with_member<T>(&mut self, which: Which<'_>, f: impl FnOnce(Member<'_>) -> Result<T, DataError>) -> Result<T, DataError> {
        let (what, len) = (self.what.clone(), self.len);
        let zip = &mut self.zip;
        let name_for_guard = what.clone();
        guarded(&name_for_guard, move || {
            let bad = |reason: String| DataError::Format { path: what.clone(), reason };
            let mut e = match which {
                Which::Index(k) => zip.by_index(k).map_err(|e| bad(format!("entry {k}: {e}")))?,
                Which::Name(n) => zip.by_name(n).map_err(|e| bad(format!("entry {n}: {e}")))?,
            };
            let name = e.name().to_string();
            let (size, packed) = (e.size(), e.compressed_size());
            if packed > len {
                return Err(bad(format!("entry {name} declares {packed} compressed bytes but the archive has {len}")));
            }
            let stored = e.compression() == zip::CompressionMethod::Stored;
            if (stored && size > packed) || size > packed.saturating_mul(DEFLATE_MAX_RATIO).saturating_add(1024) {
                return Err(bad(format!("entry {name} declares {size} bytes from {packed} compressed bytes, more than the data can hold")));
            }
            if size > MAX_MEMBER_BYTES {
                return Err(bad(format!("entry {name} declares {size} bytes, above margin's cap of {MAX_MEMBER_BYTES} per member")));
            }
            let is_dir = e.is_dir();
            let mut limited = (&mut e).take(size);
            f(Member { name, is_dir, size, reader: &mut limited })
        })
    }

    /// Reads a whole member into memory (its declared size, checked, at most).
    pub fn read(&mut self, which: Which<'_>) -> Result<(String, Vec<u8>), DataError> {
        let what = self.what.clone();
        self.with_member(which, |m| {
            let mut buf = Vec::new();
            m.reader.read_to_end(&mut buf).map_err(|e| DataError::Format { path: format!("{what}:{}", m.name), reason: format!("cannot decompress: {e}") })?;
            if (buf.len() as u64) < m.size {
                return Err(DataError::Format { path: format!("{what}:{}", m.name), reason: format!("truncated: {} of {} bytes", buf.len(), m.size) });
            }
            Ok((m.name, buf))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored (uncompressed) one-member zip whose sizes can be forged.
    pub(crate) fn stored_zip(name: &str, data: &[u8], declared: Option<u32>) -> Vec<u8> {
        let size = declared.unwrap_or(data.len() as u32);
        let crc = crc32(data);
        let mut z = Vec::new();
        let local = |z: &mut Vec<u8>| {
            z.extend_from_slice(&0x04034b50u32.to_le_bytes());
            z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            z.extend_from_slice(&crc.to_le_bytes());
            z.extend_from_slice(&size.to_le_bytes());
            z.extend_from_slice(&size.to_le_bytes());
            z.extend_from_slice(&(name.len() as u16).to_le_bytes());
            z.extend_from_slice(&0u16.to_le_bytes());
            z.extend_from_slice(name.as_bytes());
        };
        local(&mut z);
        z.extend_from_slice(data);
        let cd = z.len() as u32;
        z.extend_from_slice(&0x02014b50u32.to_le_bytes());
        z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&size.to_le_bytes());
        z.extend_from_slice(&size.to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&[0; 12]);
        z.extend_from_slice(&0u32.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        let cd_len = z.len() as u32 - cd;
        z.extend_from_slice(&0x06054b50u32.to_le_bytes());
        z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
        z.extend_from_slice(&cd_len.to_le_bytes());
        z.extend_from_slice(&cd.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn reads_a_member_and_refuses_forged_sizes() {
        let z = stored_zip("a.txt", b"hello", None);
        let mut a = Archive::from_bytes(z, "t.zip").unwrap();
        assert_eq!(a.names(), vec!["a.txt"]);
        assert_eq!(a.read(Which::Name("a.txt")).unwrap().1, b"hello");
        // A member that claims 4 GB from 5 stored bytes.
        let z = stored_zip("a.txt", b"hello", Some(4_000_000_000));
        let e = Archive::from_bytes(z, "t.zip").and_then(|mut a| a.read(Which::Index(0))).unwrap_err().to_string();
        assert!(e.contains("t.zip") && (e.contains("4000000000") || e.contains("compressed")), "{e}");
    }
}
