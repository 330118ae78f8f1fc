//! A layer blob streaming from the registry into the blob store: whoever reads the
//! [`Download`] (the decompressor feeding the layer store) gets the bytes as they arrive,
//! while they are hashed and appended to the blob's partial file. A partial file left by
//! an interrupted pull is read back first and the rest is fetched with `Range`.

use super::client::{BlobReader, Client};
use super::manifest::Descriptor;
use crate::blobs::{BlobStore, PartialBlob};
use crate::{Error, Result};
use berth_digest::{Digest, Hasher};
use std::io::{self, Read};

/// Called with the bytes of the blob delivered so far.
pub type ProgressFn<'a> = &'a (dyn Fn(u64) + Sync);

pub struct Download<'a> {
    desc: Descriptor,
    partial: PartialBlob,
    existing: Option<Box<dyn Read + Send + 'a>>,
    net: BlobReader<'a>,
    hasher: Hasher,
    done: u64,
    progress: ProgressFn<'a>,
}

impl<'a> Download<'a> {
    /// Starts (or resumes) downloading the blob `desc` describes.
    pub fn start(
        client: &'a Client,
        blobs: &BlobStore,
        desc: &Descriptor,
        progress: ProgressFn<'a>,
    ) -> Result<Download<'a>> {
        let mut partial = blobs.partial(&desc.digest)?;
        if partial.existing() > desc.size {
            // Not a prefix of this blob: start again.
            partial.discard();
            partial = blobs.partial(&desc.digest)?;
        }
        let offset = partial.existing();
        let existing: Option<Box<dyn Read + Send + 'a>> = if offset > 0 {
            Some(Box::new(partial.read_existing()?))
        } else {
            None
        };
        Ok(Download {
            desc: desc.clone(),
            net: BlobReader::from_offset(client, desc.digest.clone(), Some(desc.size), offset),
            partial,
            existing,
            hasher: Hasher::new(),
            done: 0,
            progress,
        })
    }

    /// Bytes delivered so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// Reads what is left, checks the size and digest and puts the blob in place (a
    /// wrong blob is removed, so the next pull starts afresh).
    pub fn finish(mut self) -> Result<Digest> {
        let digest = self.desc.digest.clone();
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| Error::Archive(format!("download blob {digest}: {e}")))?;
        if self.done != self.desc.size {
            self.partial.discard();
            return Err(Error::Archive(format!(
                "blob {digest}: got {} bytes, its descriptor says {}",
                self.done, self.desc.size
            )));
        }
        let got = self.hasher.finish();
        self.partial.finish(&got)?;
        Ok(digest)
    }
}

impl Read for Download<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(r) = self.existing.as_mut() {
            let n = r.read(buf)?;
            if n > 0 {
                self.hasher.update(&buf[..n]);
                self.done += n as u64;
                (self.progress)(self.done);
                return Ok(n);
            }
            self.existing = None;
        }
        let n = self.net.read(buf)?;
        if n > 0 {
            self.partial.append(&buf[..n])?;
            self.hasher.update(&buf[..n]);
            self.done += n as u64;
            (self.progress)(self.done);
        }
        Ok(n)
    }
}
