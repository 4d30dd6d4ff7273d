//! Optional LZ4 compression of file data, in EROFS's simplest compressed form.
//!
//! A compressed file (data layout "compressed, full indexes") is cut into extents;
//! each extent is stored in exactly one 4 KiB physical block: either LZ4-compressed
//! (as much input as fits one block, found by probing; zero-padded in front, the
//! "0-padding" feature), or plain (4096 raw bytes). Every extent but the last spans
//! at least 4096 bytes, so each 4 KiB logical cluster holds at most one extent head,
//! as the per-cluster index requires. The compressed blocks are spilled to a
//! temporary file while planning and copied into the image when writing. Only files
//! that save at least one block are compressed.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use super::format::{self, BLOCK_SIZE, LCLUSTER_HEAD1, LCLUSTER_NONHEAD, LCLUSTER_PLAIN};

const BLOCK: usize = BLOCK_SIZE as usize;
/// Longest input one extent may hold (keeps random reads cheap).
const MAX_EXTENT: usize = 64 * 1024;
/// Search granularity for the input length that fits one block.
const STEP: usize = 32;
/// Bound on compression probes per extent.
const MAX_PROBES: usize = 10;

/// One extent of a compressed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Extent {
    /// Offset in the file where the extent starts.
    pub start: u64,
    /// LZ4 (true) or raw (false).
    pub compressed: bool,
}

/// Where a compressed file's blocks are and how its data is cut.
#[derive(Debug, Clone)]
pub(super) struct Compressed {
    /// Extents in file order; extent `i` is stored in block `i` of the file's run.
    pub extents: Vec<Extent>,
    /// Byte offset of the file's first block in the spill.
    pub spill_offset: u64,
}

impl Compressed {
    /// Physical blocks used (one per extent).
    pub fn blocks(&self) -> u64 {
        self.extents.len() as u64
    }
}

/// The spill file of compressed blocks.
#[derive(Debug)]
pub(super) struct ZSpill {
    file: File,
    end: u64,
}

impl ZSpill {
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile()?,
            end: 0,
        })
    }

    /// Reads `len` bytes at `offset` into `out`.
    pub fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(out, offset)
    }

    /// Compresses a file of `size` bytes read from `reader`; `None` when that would
    /// not save a block (nothing stays in the spill then).
    pub fn compress(&mut self, reader: &mut dyn Read, size: u64) -> io::Result<Option<Compressed>> {
        let spill_offset = self.end;
        let mut window = Window {
            buf: Vec::new(),
            start: 0,
            done: false,
        };
        let mut extents = Vec::new();
        let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(MAX_EXTENT)];
        let mut block = vec![0u8; BLOCK];
        let mut guess = 2 * BLOCK;
        let mut pos = 0u64;
        while pos < size {
            window.fill(reader, MAX_EXTENT)?;
            let data = window.data();
            let fit = if data.len() > BLOCK {
                best_fit(data, guess, &mut out)
            } else {
                None
            };
            block.fill(0);
            let (len, compressed) = match fit {
                Some((len, n)) => {
                    guess = len;
                    block[BLOCK - n..].copy_from_slice(&out[..n]);
                    (len, true)
                }
                None => {
                    // Linux 6.1 maps a raw extent up to the end of the logical cluster
                    // being read (or the next head in it) and rejects more than a
                    // block: a final raw extent that starts inside a cluster must end
                    // at that cluster's end, the rest becomes one more extent.
                    let offset = (pos % BLOCK_SIZE) as usize;
                    let len = if data.len() <= BLOCK && offset > 0 {
                        data.len().min(BLOCK - offset)
                    } else {
                        data.len().min(BLOCK)
                    };
                    block[..len].copy_from_slice(&data[..len]);
                    (len, false)
                }
            };
            self.file.write_all_at(&block, self.end)?;
            self.end += BLOCK_SIZE;
            extents.push(Extent {
                start: pos,
                compressed,
            });
            pos += len as u64;
            window.consume(len);
        }
        if extents.len() as u64 >= size / BLOCK_SIZE {
            self.end = spill_offset;
            return Ok(None);
        }
        Ok(Some(Compressed {
            extents,
            spill_offset,
        }))
    }
}

impl Compressed {
    /// The full per-logical-cluster index array of a file of `size` bytes whose
    /// blocks start at `blkaddr`.
    pub fn indexes(&self, size: u64, blkaddr: u64) -> Vec<u8> {
        let n = size.div_ceil(BLOCK_SIZE);
        let mut out = Vec::with_capacity(n as usize * 8);
        let x = &self.extents;
        let mut e = 0;
        for lcn in 0..n {
            let (lstart, lend) = (lcn * BLOCK_SIZE, (lcn + 1) * BLOCK_SIZE);
            while e + 1 < x.len() && x[e + 1].start <= lstart {
                e += 1;
            }
            let head = if x[e].start == lstart {
                Some(e)
            } else if e + 1 < x.len() && x[e + 1].start < lend {
                Some(e + 1)
            } else {
                None
            };
            match head {
                Some(h) => {
                    let advise = if x[h].compressed {
                        LCLUSTER_HEAD1
                    } else {
                        LCLUSTER_PLAIN
                    };
                    let clusterofs = (x[h].start - lstart) as u16;
                    let pblk = (blkaddr + h as u64) as u32;
                    format::encode_lcluster(&mut out, advise, clusterofs, pblk);
                }
                None => {
                    let delta0 = (lcn - x[e].start / BLOCK_SIZE) as u32;
                    let next = x.get(e + 1).map_or(n, |next| next.start / BLOCK_SIZE);
                    let delta1 = (next - lcn) as u32;
                    format::encode_lcluster(&mut out, LCLUSTER_NONHEAD, 0, delta0 | (delta1 << 16));
                }
            }
        }
        out
    }
}

/// Finds (about) the longest prefix of `data` whose LZ4 block fits 4096 bytes,
/// starting from `guess`; returns its length and compressed size, or `None` when
/// it would hold barely more than a raw block. `out` holds the compressed bytes.
///
/// LZ4 output grows about linearly with input, so probes are placed by secant
/// steps between the longest prefix known to fit and the shortest known not to,
/// until they are [`STEP`] bytes apart (bounded number of probes).
fn best_fit(data: &[u8], guess: usize, out: &mut [u8]) -> Option<(usize, usize)> {
    let size = |len: usize, out: &mut [u8]| {
        lz4_flex::block::compress_into(&data[..len], out).expect("output sized for the input")
    };
    let min = BLOCK + STEP;
    if data.len() < min {
        return None;
    }
    let mut lo: Option<(usize, usize)> = None;
    let mut hi: Option<(usize, usize)> = None;
    let mut best = [0u8; BLOCK];
    let mut probe = guess.clamp(min, data.len());
    for _ in 0..MAX_PROBES {
        let n = size(probe, out);
        if n <= BLOCK {
            lo = Some((probe, n));
            best[..n].copy_from_slice(&out[..n]);
        } else {
            hi = Some((probe, n));
        }
        let lo_len = lo.map_or(min - 1, |l| l.0);
        let hi_len = hi.map_or(data.len() + 1, |h| h.0);
        if hi_len - lo_len <= STEP || (lo.is_none() && probe == min) {
            break;
        }
        let (estimate, margin) = match (lo, hi) {
            // Bracketed: secant, kept a little away from the ends so it never stalls.
            (Some((l, ln)), Some((h, hn))) => {
                (l + (BLOCK - ln) * (h - l) / (hn - ln).max(1), STEP / 4)
            }
            // Extrapolate, slightly past the estimate to get a bracket.
            (Some((l, ln)), None) => (l * BLOCK / ln.max(1) + STEP, 1),
            (None, Some((h, hn))) => ((h * BLOCK / hn).saturating_sub(STEP), 1),
            (None, None) => unreachable!("one probe was made"),
        };
        probe = estimate
            .clamp(lo_len + margin, hi_len - margin)
            .clamp(min, data.len());
    }
    let (len, n) = lo?;
    out[..n].copy_from_slice(&best[..n]);
    Some((len, n))
}

/// A sliding read-ahead buffer over the file being compressed.
struct Window {
    buf: Vec<u8>,
    start: usize,
    done: bool,
}

impl Window {
    fn fill(&mut self, reader: &mut dyn Read, want: usize) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        while !self.done && self.buf.len() < want {
            let old = self.buf.len();
            self.buf.resize(want, 0);
            let n = reader.read(&mut self.buf[old..])?;
            self.buf.truncate(old + n);
            self.done = n == 0;
        }
        Ok(())
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_data_saves_blocks_and_roundtrips() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("line {} ", i % 977).into_bytes())
            .collect();
        let mut z = ZSpill::new().unwrap();
        let c = z
            .compress(&mut &text[..], text.len() as u64)
            .unwrap()
            .expect("text compresses");
        assert!(c.blocks() < text.len() as u64 / BLOCK_SIZE / 2);
        let mut rebuilt = Vec::new();
        for (i, e) in c.extents.iter().enumerate() {
            let end = c.extents.get(i + 1).map_or(text.len() as u64, |n| n.start) as usize;
            let mut block = vec![0u8; BLOCK];
            z.read_at(c.spill_offset + i as u64 * BLOCK_SIZE, &mut block)
                .unwrap();
            let want = end - e.start as usize;
            assert!(i + 2 >= c.extents.len() || want >= BLOCK);
            if e.compressed {
                let skip = block.iter().position(|b| *b != 0).unwrap();
                let got = lz4_flex::block::decompress(&block[skip..], want).unwrap();
                rebuilt.extend_from_slice(&got);
            } else {
                rebuilt.extend_from_slice(&block[..want]);
            }
        }
        assert!(rebuilt == text);
    }

    /// Linux 6.1 maps a raw extent from its head to the end of the logical cluster
    /// read (or the next head there) and rejects anything longer than a block.
    #[test]
    fn raw_extents_map_within_a_block_as_linux_6_1_sees_them() {
        let text: Vec<u8> = (0..30_000u32)
            .flat_map(|i| format!("{i} ").into_bytes())
            .collect();
        let mut x = 7u64;
        let mut data = Vec::new();
        for round in 0..30usize {
            data.extend_from_slice(&text[..1000 + round * 977]);
            data.extend((0..(round * 1733) % 9000).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            let mut z = ZSpill::new().unwrap();
            let Some(c) = z.compress(&mut &data[..], data.len() as u64).unwrap() else {
                continue;
            };
            let size = data.len() as u64;
            for (i, e) in c.extents.iter().enumerate().filter(|(_, e)| !e.compressed) {
                let end = c.extents.get(i + 1).map_or(size, |n| n.start);
                let head_lcn = e.start / BLOCK_SIZE;
                // Every logical cluster the extent touches, mapped as 6.1 does.
                for lcn in head_lcn..end.div_ceil(BLOCK_SIZE) {
                    let next_head_here = c
                        .extents
                        .get(i + 1)
                        .map(|n| n.start)
                        .filter(|s| s / BLOCK_SIZE == lcn);
                    let map_end = next_head_here.unwrap_or((lcn + 1) * BLOCK_SIZE);
                    assert!(
                        map_end - e.start <= BLOCK_SIZE,
                        "round {round}: extent {i} at {}",
                        e.start
                    );
                }
            }
        }
    }

    #[test]
    fn random_data_is_not_compressed() {
        let mut x = 1u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut z = ZSpill::new().unwrap();
        assert!(z
            .compress(&mut &noise[..], noise.len() as u64)
            .unwrap()
            .is_none());
    }
}
