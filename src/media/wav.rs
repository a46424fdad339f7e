//! RIFF/WAVE: reading prompts for `Play`, writing recordings for `Record`.
//!
//! Why our own: the player takes files from customers' web servers, so the reader must be
//! bounded and strict about lengths (a size cap, every chunk length checked against what
//! is actually there) and must say precisely why a file is refused, because that reason
//! ends up in the call's error report. The formats are few and fixed by what telephony
//! needs, so a small parser over a byte slice is simpler than a general audio crate.
//!
//! Reading (`Wav::parse`) accepts:
//! - PCM 16-bit (format tag 1) at 8000 or 16000 Hz;
//! - μ-law (tag 7) and A-law (tag 6), 8-bit, at 8000 Hz;
//! - the same inside `WAVE_FORMAT_EXTENSIBLE` (tag 0xFFFE), which many tools write;
//! - mono, or stereo which is **downmixed** (the two channels averaged) rather than
//!   refused, since a stereo prompt is a common authoring accident and the average is
//!   what a listener on a mono phone line would expect. More than two channels is refused.
//!
//! Chunks are walked in order: unknown ones (`LIST`, `fact`, `cue `, `bext`...) are
//! skipped, odd-sized chunks are followed by their RIFF pad byte, and the walk stops once
//! both `fmt ` and `data` are found, so trailing metadata cannot make a good file fail.
//! The RIFF size field is trusted only as far as the bytes go (many writers get it wrong),
//! but every chunk's own size is checked: a `data` chunk that claims more bytes than the
//! file holds is a truncated download and is refused.
//!
//! Output is 8 kHz: the samples as `i16`, or directly G.711 frames of 160 bytes (20 ms)
//! in the law the call negotiated. 16 kHz PCM is decimated by two after a 23-tap half-band
//! low-pass FIR (Hamming-windowed sinc, Q15 coefficients): flat to 3 kHz, −0.9 dB at
//! 3.4 kHz, −6 dB at 4 kHz, below −40 dB from 5 kHz, so what folds back into the
//! telephone band is inaudible. A G.711 file played in its own law is copied byte for
//! byte; in the other law it goes through the direct transcoding table (one quantisation,
//! not two).
//!
//! Writing: a recording is 8 kHz mono PCM 16-bit, a fixed 44-byte header then the
//! samples. See [`recording_header`] for how a recording written incrementally is made
//! valid at the end (and how one left unfinished by a crash is repaired).

use std::fmt;

use super::g711::{G711Law, alaw_decode, alaw_to_ulaw, ulaw_decode, ulaw_to_alaw};

/// Samples per 20 ms frame at 8 kHz: the RTP packetisation every G.711 leg uses.
pub const FRAME_SAMPLES: usize = 160;
/// One 20 ms G.711 frame, ready to be an RTP payload.
pub type G711Frame = [u8; FRAME_SAMPLES];

/// `WAVE_FORMAT_PCM` (mmreg.h).
pub const WAVE_FORMAT_PCM: u16 = 0x0001;
/// `WAVE_FORMAT_ALAW` (mmreg.h): G.711 A-law.
pub const WAVE_FORMAT_ALAW: u16 = 0x0006;
/// `WAVE_FORMAT_MULAW` (mmreg.h): G.711 μ-law.
pub const WAVE_FORMAT_MULAW: u16 = 0x0007;
/// `WAVE_FORMAT_EXTENSIBLE`: the real tag is the first two bytes of the sub-format GUID.
pub const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// The fixed tail of every `KSDATAFORMAT_SUBTYPE_*` GUID derived from a format tag
/// (`XXXXXXXX-0000-0010-8000-00aa00389b71`), as stored after the 4-byte tag field.
const KSDATAFORMAT_GUID_TAIL: [u8; 12] = [
    0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
];

/// A four-character chunk identifier, shown escaped in errors (files come from strangers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkId(pub [u8; 4]);

impl ChunkId {
    /// The container: `RIFF`.
    pub const RIFF: ChunkId = ChunkId(*b"RIFF");
    /// The RIFF form type of a WAV file: `WAVE`.
    pub const WAVE: ChunkId = ChunkId(*b"WAVE");
    /// The format chunk: `fmt ` (with the space).
    pub const FMT: ChunkId = ChunkId(*b"fmt ");
    /// The sample chunk: `data`.
    pub const DATA: ChunkId = ChunkId(*b"data");

    /// The first (up to) four bytes of `bytes`, zero-padded.
    fn prefix(bytes: &[u8]) -> ChunkId {
        let mut id = [0u8; 4];
        let n = bytes.len().min(4);
        id[..n].copy_from_slice(&bytes[..n]);
        ChunkId(id)
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId(\"{self}\")")
    }
}

/// Why a WAV file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// Larger than the caller's cap (checked before anything else is read).
    #[error("WAV file of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge {
        /// The file's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Does not start with `RIFF` (RIFX and RF64 included: not supported).
    #[error("not a RIFF file (starts with \"{found}\")")]
    NotRiff {
        /// The first four bytes (zero-padded if fewer).
        found: ChunkId,
    },
    /// A RIFF file of another form type (`AVI `, `WEBP`...).
    #[error("RIFF form type \"{found}\", not WAVE")]
    NotWave {
        /// The form type found at offset 8.
        found: ChunkId,
    },
    /// Fewer than 8 bytes where a chunk header (or the 12-byte RIFF header) should be.
    #[error("truncated chunk header at offset {offset}")]
    TruncatedHeader {
        /// Where the header should start.
        offset: usize,
    },
    /// A chunk whose declared size runs past the end of the file.
    #[error(
        "truncated \"{chunk}\" chunk at offset {offset}: declares {declared} bytes, {available} present"
    )]
    TruncatedChunk {
        /// The chunk's identifier.
        chunk: ChunkId,
        /// Where its header starts.
        offset: usize,
        /// The body size its header declares.
        declared: u32,
        /// The body bytes actually present.
        available: usize,
    },
    /// No `fmt ` chunk before the end of the file.
    #[error("no \"fmt \" chunk")]
    MissingFmt,
    /// No `data` chunk before the end of the file.
    #[error("no \"data\" chunk")]
    MissingData,
    /// A `fmt ` chunk shorter than the 16 bytes of `WAVEFORMAT` + `wBitsPerSample`, or an
    /// extensible one shorter than 40.
    #[error("\"fmt \" chunk of {0} bytes is too short")]
    FmtTooShort(u32),
    /// A format tag other than PCM, μ-law or A-law (e.g. 2 ADPCM, 3 float, 85 MP3), or an
    /// extensible sub-format GUID that is not one of those.
    #[error("unsupported format tag {0}")]
    UnsupportedFormatTag(u16),
    /// PCM not 16-bit, or G.711 not 8-bit.
    #[error("unsupported {bits} bits per sample for format tag {format_tag}")]
    UnsupportedBitsPerSample {
        /// The (effective) format tag.
        format_tag: u16,
        /// `wBitsPerSample`.
        bits: u16,
    },
    /// PCM not at 8000 or 16000 Hz, or G.711 not at 8000 Hz.
    #[error("unsupported sample rate {rate} Hz for format tag {format_tag}")]
    UnsupportedSampleRate {
        /// The (effective) format tag.
        format_tag: u16,
        /// `nSamplesPerSec`.
        rate: u32,
    },
    /// Zero, or more than two, channels.
    #[error("unsupported channel count {0} (mono or stereo only)")]
    UnsupportedChannels(u16),
    /// `nBlockAlign` disagrees with channels × bytes per sample: the file is corrupt.
    #[error("block align {found}, expected {expected}")]
    BadBlockAlign {
        /// Channels × bytes per sample.
        expected: u16,
        /// `nBlockAlign` in the file.
        found: u16,
    },
}

impl WavError {
    /// A stable, low-cardinality label for logs and metrics.
    pub const fn class(&self) -> &'static str {
        match self {
            WavError::TooLarge { .. } => "too_large",
            WavError::NotRiff { .. } => "not_riff",
            WavError::NotWave { .. } => "not_wave",
            WavError::TruncatedHeader { .. } | WavError::TruncatedChunk { .. } => "truncated",
            WavError::MissingFmt | WavError::MissingData => "missing_chunk",
            WavError::FmtTooShort(_) | WavError::BadBlockAlign { .. } => "bad_fmt",
            WavError::UnsupportedFormatTag(_)
            | WavError::UnsupportedBitsPerSample { .. }
            | WavError::UnsupportedSampleRate { .. }
            | WavError::UnsupportedChannels(_) => "unsupported_format",
        }
    }
}

/// How the samples in the `data` chunk are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WavEncoding {
    /// Linear PCM, signed 16-bit little-endian.
    Pcm16,
    /// G.711, one byte per sample.
    G711(G711Law),
}

/// The accepted `fmt ` of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WavFormat {
    /// PCM 16-bit or G.711.
    pub encoding: WavEncoding,
    /// 8000, or 16000 for `Pcm16`.
    pub sample_rate: u32,
    /// 1 or 2 (stereo is downmixed on output).
    pub channels: u16,
}

impl WavFormat {
    /// Bytes per sample frame (all channels).
    pub const fn block_align(&self) -> usize {
        let bytes = match self.encoding {
            WavEncoding::Pcm16 => 2,
            WavEncoding::G711(_) => 1,
        };
        bytes * self.channels as usize
    }
}

/// A parsed WAV file borrowing its sample bytes from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wav<'a> {
    format: WavFormat,
    data: &'a [u8],
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Validates a `fmt ` chunk body against what we can play.
fn parse_fmt(body: &[u8]) -> Result<WavFormat, WavError> {
    let len = body.len() as u32;
    if body.len() < 16 {
        return Err(WavError::FmtTooShort(len));
    }
    let mut format_tag = u16_le(body, 0);
    let channels = u16_le(body, 2);
    let sample_rate = u32_le(body, 4);
    let block_align = u16_le(body, 12);
    let bits = u16_le(body, 14);

    if format_tag == WAVE_FORMAT_EXTENSIBLE {
        // WAVEFORMATEXTENSIBLE: cbSize (2) = 22, valid bits (2), channel mask (4), GUID (16).
        if body.len() < 40 || u16_le(body, 16) < 22 {
            return Err(WavError::FmtTooShort(len));
        }
        let guid = &body[24..40];
        if guid[4..] != KSDATAFORMAT_GUID_TAIL || guid[2..4] != [0, 0] {
            return Err(WavError::UnsupportedFormatTag(WAVE_FORMAT_EXTENSIBLE));
        }
        format_tag = u16_le(guid, 0);
    }

    let (encoding, want_bits, rate_ok) = match format_tag {
        WAVE_FORMAT_PCM => (
            WavEncoding::Pcm16,
            16,
            sample_rate == 8000 || sample_rate == 16000,
        ),
        WAVE_FORMAT_MULAW => (WavEncoding::G711(G711Law::Pcmu), 8, sample_rate == 8000),
        WAVE_FORMAT_ALAW => (WavEncoding::G711(G711Law::Pcma), 8, sample_rate == 8000),
        other => return Err(WavError::UnsupportedFormatTag(other)),
    };
    if bits != want_bits {
        return Err(WavError::UnsupportedBitsPerSample { format_tag, bits });
    }
    if !rate_ok {
        return Err(WavError::UnsupportedSampleRate {
            format_tag,
            rate: sample_rate,
        });
    }
    if channels == 0 || channels > 2 {
        return Err(WavError::UnsupportedChannels(channels));
    }
    let format = WavFormat {
        encoding,
        sample_rate,
        channels,
    };
    let expected = format.block_align() as u16;
    if block_align != expected {
        return Err(WavError::BadBlockAlign {
            expected,
            found: block_align,
        });
    }
    Ok(format)
}

/// 23-tap half-band low-pass for 16 → 8 kHz, Q15. Only the centre and odd offsets are
/// non-zero (the half-band property), so each output sample costs seven multiplies
/// for the pairs plus the centre. Coefficients: Hamming-windowed sinc with cut-off at a
/// quarter of the input rate, odd taps scaled so the DC gain is exactly 1 (sum 32768).
const HALF_BAND_CENTRE: i32 = 16384;
const HALF_BAND_ODD_TAPS: [i32; 6] = [10301, -3019, 1380, -629, 250, -91];

/// Decimates 16 kHz mono to 8 kHz: output `k` is the filtered input at `2k`; samples
/// beyond either end count as silence.
fn decimate_16k_to_8k(input: &[i16]) -> Vec<i16> {
    let at = |i: isize| -> i32 {
        if i < 0 {
            0
        } else {
            input.get(i as usize).map_or(0, |&s| i32::from(s))
        }
    };
    let mut out = Vec::with_capacity(input.len().div_ceil(2));
    for centre in (0..input.len()).step_by(2) {
        let c = centre as isize;
        // |acc| ≤ 32768 · Σ|h| ≈ 1.56e9 < i32::MAX.
        let mut acc = HALF_BAND_CENTRE * at(c);
        for (k, &h) in HALF_BAND_ODD_TAPS.iter().enumerate() {
            let d = 2 * k as isize + 1;
            acc += h * (at(c - d) + at(c + d));
        }
        // Round to nearest, then clamp: a band-limited overshoot can exceed full scale.
        let y = (acc + (1 << 14)) >> 15;
        out.push(y.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
    }
    out
}

impl<'a> Wav<'a> {
    /// Parses a WAV file held in memory. `max_bytes` caps the whole file; the fetcher
    /// applies the same cap while downloading, this is the backstop.
    pub fn parse(bytes: &'a [u8], max_bytes: usize) -> Result<Wav<'a>, WavError> {
        if bytes.len() > max_bytes {
            return Err(WavError::TooLarge {
                len: bytes.len(),
                max: max_bytes,
            });
        }
        if bytes.len() < 4 || bytes[..4] != ChunkId::RIFF.0 {
            return Err(WavError::NotRiff {
                found: ChunkId::prefix(bytes),
            });
        }
        if bytes.len() < 12 {
            return Err(WavError::TruncatedHeader { offset: 0 });
        }
        if bytes[8..12] != ChunkId::WAVE.0 {
            return Err(WavError::NotWave {
                found: ChunkId::prefix(&bytes[8..12]),
            });
        }
        // The RIFF size is only an upper bound: writers often leave it stale, and what we
        // can read is bounded by the bytes anyway.
        let riff_end = 8usize.saturating_add(u32_le(bytes, 4) as usize);
        let end = riff_end.min(bytes.len());

        let mut format: Option<WavFormat> = None;
        let mut data: Option<&'a [u8]> = None;
        let mut pos = 12;
        while pos < end {
            if end - pos < 8 {
                return Err(WavError::TruncatedHeader { offset: pos });
            }
            let chunk = ChunkId::prefix(&bytes[pos..pos + 4]);
            let declared = u32_le(bytes, pos + 4);
            let body_start = pos + 8;
            let available = end - body_start;
            if declared as usize > available {
                return Err(WavError::TruncatedChunk {
                    chunk,
                    offset: pos,
                    declared,
                    available,
                });
            }
            let body = &bytes[body_start..body_start + declared as usize];
            // The first `fmt ` and the first `data` count; anything else is skipped.
            if chunk == ChunkId::FMT && format.is_none() {
                format = Some(parse_fmt(body)?);
            } else if chunk == ChunkId::DATA && data.is_none() {
                data = Some(body);
            }
            if format.is_some() && data.is_some() {
                break;
            }
            // Odd-sized chunks are followed by a pad byte (RIFF word alignment); a missing
            // pad at the very end is harmless since the loop ends there anyway.
            pos = body_start + declared as usize + (declared as usize & 1);
        }
        let format = format.ok_or(WavError::MissingFmt)?;
        let data = data.ok_or(WavError::MissingData)?;
        Ok(Wav { format, data })
    }

    /// The file's accepted format.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// The raw bytes of the `data` chunk.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Whole sample frames in the file (a trailing partial frame is ignored).
    pub fn frames(&self) -> usize {
        self.data.len() / self.format.block_align()
    }

    /// Playing time in milliseconds, rounded down.
    pub fn duration_ms(&self) -> u64 {
        self.frames() as u64 * 1000 / u64::from(self.format.sample_rate)
    }

    /// One mono sample per frame at the file's own rate (stereo averaged).
    fn mono_samples(&self) -> Vec<i16> {
        let block = self.format.block_align();
        let channels = usize::from(self.format.channels);
        let decode = |chunk: &[u8], ch: usize| -> i32 {
            i32::from(match self.format.encoding {
                WavEncoding::Pcm16 => i16::from_le_bytes([chunk[2 * ch], chunk[2 * ch + 1]]),
                WavEncoding::G711(G711Law::Pcmu) => ulaw_decode(chunk[ch]),
                WavEncoding::G711(G711Law::Pcma) => alaw_decode(chunk[ch]),
            })
        };
        self.data
            .chunks_exact(block)
            .map(|frame| {
                if channels == 2 {
                    // Average, not sum: two full-scale channels must not clip.
                    ((decode(frame, 0) + decode(frame, 1)) >> 1) as i16
                } else {
                    decode(frame, 0) as i16
                }
            })
            .collect()
    }

    /// The audio as 8 kHz mono 16-bit samples: what the mixer and the encoder take.
    pub fn to_pcm_8k(&self) -> Vec<i16> {
        let mono = self.mono_samples();
        if self.format.sample_rate == 16000 {
            decimate_16k_to_8k(&mono)
        } else {
            mono
        }
    }

    /// The audio as 20 ms G.711 frames in `law`, the last one padded with that law's
    /// silence. A mono file already in `law` is copied unchanged; one in the other law
    /// goes through the direct transcoding table.
    pub fn to_g711_frames(&self, law: G711Law) -> Vec<G711Frame> {
        let mut frames = Vec::new();
        let mut push = |codes: &mut dyn Iterator<Item = u8>| {
            let mut frame = [law.silence(); FRAME_SAMPLES];
            let mut n = 0;
            for code in codes {
                frame[n] = code;
                n += 1;
                if n == FRAME_SAMPLES {
                    frames.push(frame);
                    frame = [law.silence(); FRAME_SAMPLES];
                    n = 0;
                }
            }
            if n > 0 {
                frames.push(frame);
            }
        };
        match (self.format.encoding, self.format.channels) {
            (WavEncoding::G711(file_law), 1) => {
                let convert = match (file_law, law) {
                    (G711Law::Pcmu, G711Law::Pcma) => ulaw_to_alaw,
                    (G711Law::Pcma, G711Law::Pcmu) => alaw_to_ulaw,
                    _ => std::convert::identity,
                };
                push(&mut self.data.iter().map(|&c| convert(c)));
            }
            _ => {
                let pcm = self.to_pcm_8k();
                push(&mut pcm.iter().map(|&s| law.encode(s)));
            }
        }
        frames
    }
}

// ---------------------------------------------------------------------------------------
// Writer: recordings.

/// Length of the recording header: `RIFF` header (12) + `fmt ` chunk (8 + 16) + `data`
/// chunk header (8).
pub const RECORDING_HEADER_LEN: usize = 44;
/// File offset of the RIFF size field (`36 + data bytes`).
pub const RIFF_SIZE_OFFSET: u64 = 4;
/// File offset of the `data` chunk size field.
pub const DATA_SIZE_OFFSET: u64 = 40;
/// The most sample bytes a recording can hold: the RIFF size (`36 + data`) is a `u32`.
/// At 16 000 bytes/s that is over 74 hours, far past any `maxLength`; a recorder stops
/// before it.
pub const MAX_RECORDING_DATA_BYTES: u32 = (u32::MAX - 36) & !1;
/// The recording sample rate.
pub const RECORDING_SAMPLE_RATE: u32 = 8000;

/// The 44-byte header of an 8 kHz mono PCM 16-bit WAV holding `data_bytes` of samples.
///
/// Writing a recording incrementally, so that it is valid when it ends:
/// 1. write `recording_header(0)` (zero sizes: a placeholder);
/// 2. append samples as they arrive with [`pcm16_le`] (16 000 bytes per second);
/// 3. when the recording ends, for each `(offset, bytes)` of
///    [`recording_size_patches`]`(n)`, with `n` the sample bytes written, seek to
///    `offset` and write `bytes`; then flush. The sizes are the only fields that depend on
///    the length, and the header is fixed-size, so nothing else moves.
///
/// A recording cut short by a crash still has zero sizes; since the header length is
/// fixed its data length is [`recovered_data_bytes`]`(file length)`, and patching that in
/// as in step 3 makes it valid.
pub fn recording_header(data_bytes: u32) -> [u8; RECORDING_HEADER_LEN] {
    let data_bytes = data_bytes.min(MAX_RECORDING_DATA_BYTES);
    let byte_rate = RECORDING_SAMPLE_RATE * 2;
    let mut h = [0u8; RECORDING_HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&WAVE_FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&1u16.to_le_bytes()); // mono
    h[24..28].copy_from_slice(&RECORDING_SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes()); // bits per sample
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// The two writes that finish a recording of `data_bytes` sample bytes: `(file offset,
/// little-endian u32)` for the RIFF size and the `data` size. See [`recording_header`].
pub fn recording_size_patches(data_bytes: u32) -> [(u64, [u8; 4]); 2] {
    let data_bytes = data_bytes.min(MAX_RECORDING_DATA_BYTES);
    [
        (RIFF_SIZE_OFFSET, (36 + data_bytes).to_le_bytes()),
        (DATA_SIZE_OFFSET, data_bytes.to_le_bytes()),
    ]
}

/// Applies [`recording_size_patches`] to a recording held in memory (at least the
/// 44-byte header). Returns `false`, changing nothing, if `file` is shorter than that.
pub fn patch_recording_sizes(file: &mut [u8], data_bytes: u32) -> bool {
    if file.len() < RECORDING_HEADER_LEN {
        return false;
    }
    for (offset, bytes) in recording_size_patches(data_bytes) {
        let at = offset as usize;
        file[at..at + 4].copy_from_slice(&bytes);
    }
    true
}

/// The sample bytes in a recording file of `file_len` bytes written by this module: what
/// follows the fixed header, whole samples only, capped at [`MAX_RECORDING_DATA_BYTES`].
pub fn recovered_data_bytes(file_len: u64) -> u32 {
    let data = file_len.saturating_sub(RECORDING_HEADER_LEN as u64) & !1;
    data.min(u64::from(MAX_RECORDING_DATA_BYTES)) as u32
}

/// Writes `samples` as 16-bit little-endian into `out`, returning the bytes written
/// (`2 × min(samples, out / 2)`): the recorder's per-packet step, into a reused buffer.
pub fn pcm16_le(samples: &[i16], out: &mut [u8]) -> usize {
    let n = samples.len().min(out.len() / 2);
    for (dst, s) in out.chunks_exact_mut(2).zip(&samples[..n]) {
        dst.copy_from_slice(&s.to_le_bytes());
    }
    2 * n
}

/// A whole recording in memory: header with final sizes, then the samples.
pub fn write_recording(samples: &[i16]) -> Vec<u8> {
    let data_bytes = (samples.len() * 2).min(MAX_RECORDING_DATA_BYTES as usize);
    let mut file = Vec::with_capacity(RECORDING_HEADER_LEN + data_bytes);
    file.extend_from_slice(&recording_header(data_bytes as u32));
    file.resize(RECORDING_HEADER_LEN + data_bytes, 0);
    pcm16_le(samples, &mut file[RECORDING_HEADER_LEN..]);
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_encode, ulaw_encode};

    const CAP: usize = 1 << 20;

    /// A `fmt ` body: tag, channels, rate, bits (block align and byte rate derived).
    fn fmt_body(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let block = channels * bits / 8;
        let mut b = Vec::new();
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        b.extend_from_slice(&block.to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b
    }

    /// A RIFF/WAVE file from chunks, each padded to even length as RIFF requires.
    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WAVE".to_vec();
        for (id, data) in chunks {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }

    fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }

    fn sine(freq: f64, rate: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * freq * i as f64 / rate).sin()) as i16
            })
            .collect()
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn pcm16_8k_mono() {
        let samples: Vec<i16> = (0..400).map(|i| (i * 37 - 7000) as i16).collect();
        let file = riff(&[
            (b"fmt ", &fmt_body(1, 1, 8000, 16)),
            (b"data", &pcm_bytes(&samples)),
        ]);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(
            wav.format(),
            WavFormat {
                encoding: WavEncoding::Pcm16,
                sample_rate: 8000,
                channels: 1
            }
        );
        assert_eq!(wav.frames(), 400);
        assert_eq!(wav.duration_ms(), 50);
        assert_eq!(wav.to_pcm_8k(), samples);

        let frames = wav.to_g711_frames(G711Law::Pcmu);
        assert_eq!(frames.len(), 3, "400 samples = 2 full frames + 80");
        for (i, &s) in samples.iter().enumerate() {
            assert_eq!(frames[i / 160][i % 160], ulaw_encode(s));
        }
        assert!(
            frames[2][80..].iter().all(|&c| c == 0xFF),
            "padded with μ-law silence"
        );
        let frames = wav.to_g711_frames(G711Law::Pcma);
        assert!(
            frames[2][80..].iter().all(|&c| c == 0xD5),
            "padded with A-law silence"
        );
        assert_eq!(frames[1][5], alaw_encode(samples[165]));
    }

    #[test]
    fn skips_list_and_odd_sized_chunks_with_padding() {
        let samples = [1i16, -2, 300, -400, 5000];
        // An odd-sized LIST before fmt, an odd-sized unknown chunk between fmt and data,
        // and a LIST after data that is even truncated: none of them matter.
        let list = b"INFOISFT\x05\x00\x00\x00Lavf\x00"; // 17 bytes: odd, padded
        let mut file = riff(&[
            (b"LIST", list),
            (b"fmt ", &fmt_body(1, 1, 8000, 16)),
            (b"junk", b"abc"),
            (b"data", &pcm_bytes(&samples)),
        ]);
        file.extend_from_slice(b"LIST\xff\x00\x00\x00INFO");
        let riff_size = (file.len() - 8) as u32;
        file[4..8].copy_from_slice(&riff_size.to_le_bytes());
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(wav.to_pcm_8k(), samples);
    }

    #[test]
    fn data_before_fmt_is_fine() {
        let file = riff(&[
            (b"data", &pcm_bytes(&[7, 8, 9])),
            (b"fmt ", &fmt_body(1, 1, 8000, 16)),
        ]);
        assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [7, 8, 9]);
    }

    #[test]
    fn mulaw_and_alaw_files() {
        let codes: Vec<u8> = (0..=255).collect();
        let file = riff(&[(b"fmt ", &fmt_body(7, 1, 8000, 8)), (b"data", &codes)]);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(wav.format().encoding, WavEncoding::G711(G711Law::Pcmu));
        let pcm = wav.to_pcm_8k();
        for (i, &c) in codes.iter().enumerate() {
            assert_eq!(pcm[i], ulaw_decode(c));
        }
        // Same law: byte for byte. Other law: the direct table.
        let frames = wav.to_g711_frames(G711Law::Pcmu);
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][..], &codes[..160]);
        assert_eq!(&frames[1][..96], &codes[160..]);
        assert!(frames[1][96..].iter().all(|&c| c == 0xFF));
        let frames = wav.to_g711_frames(G711Law::Pcma);
        assert_eq!(frames[0][10], ulaw_to_alaw(codes[10]));

        let file = riff(&[(b"fmt ", &fmt_body(6, 1, 8000, 8)), (b"data", &codes)]);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(wav.format().encoding, WavEncoding::G711(G711Law::Pcma));
        assert_eq!(wav.to_pcm_8k()[200], alaw_decode(200));
        assert_eq!(&wav.to_g711_frames(G711Law::Pcma)[0][..], &codes[..160]);
        assert_eq!(wav.to_g711_frames(G711Law::Pcmu)[1][3], alaw_to_ulaw(163));
    }

    #[test]
    fn extensible_pcm_is_accepted_and_other_subformats_are_not() {
        let mut body = fmt_body(WAVE_FORMAT_EXTENSIBLE, 1, 8000, 16);
        body.extend_from_slice(&22u16.to_le_bytes()); // cbSize
        body.extend_from_slice(&16u16.to_le_bytes()); // valid bits
        body.extend_from_slice(&4u32.to_le_bytes()); // channel mask: front centre
        body.extend_from_slice(&1u32.to_le_bytes()); // KSDATAFORMAT_SUBTYPE_PCM
        body.extend_from_slice(&KSDATAFORMAT_GUID_TAIL);
        let file = riff(&[(b"fmt ", &body), (b"data", &pcm_bytes(&[42, -42]))]);
        assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [42, -42]);

        body[24] = 3; // KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
        let file = riff(&[(b"fmt ", &body), (b"data", &[0; 4])]);
        assert_eq!(
            Wav::parse(&file, CAP),
            Err(WavError::UnsupportedFormatTag(3))
        );
        let short = &body[..30];
        let file = riff(&[(b"fmt ", short), (b"data", &[0; 4])]);
        assert_eq!(Wav::parse(&file, CAP), Err(WavError::FmtTooShort(30)));
    }

    #[test]
    fn stereo_is_downmixed_by_averaging() {
        let frames: Vec<i16> = [1000i16, 3000, -32768, -32768, 32767, 32767, 101, -100].to_vec();
        let file = riff(&[
            (b"fmt ", &fmt_body(1, 2, 8000, 16)),
            (b"data", &pcm_bytes(&frames)),
        ]);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(wav.frames(), 4);
        assert_eq!(wav.to_pcm_8k(), [2000, -32768, 32767, 0]);

        let file = riff(&[
            (b"fmt ", &fmt_body(7, 2, 8000, 8)),
            (b"data", &[0x80, 0x00]),
        ]);
        assert_eq!(Wav::parse(&file, CAP).unwrap().to_pcm_8k(), [0]);
    }

    #[test]
    fn sixteen_khz_is_low_passed_and_decimated() {
        // A 1 kHz tone passes at the same level (passband ripple 0.02 dB) and phase...
        let input = sine(1000.0, 16000.0, 10000.0, 1600);
        let file = riff(&[
            (b"fmt ", &fmt_body(1, 1, 16000, 16)),
            (b"data", &pcm_bytes(&input)),
        ]);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(wav.duration_ms(), 100);
        let out = wav.to_pcm_8k();
        assert_eq!(out.len(), 800);
        let want = sine(1000.0, 8000.0, 10000.0, 800);
        // Away from the edges (the filter reaches 11 input samples either side).
        for i in 8..792 {
            assert!(
                (i32::from(out[i]) - i32::from(want[i])).abs() <= 30,
                "sample {i}: {} vs {}",
                out[i],
                want[i]
            );
        }
        // ...and a 6 kHz tone, which would alias to 2 kHz, is gone (filter: −50 dB).
        let input = sine(6000.0, 16000.0, 10000.0, 1600);
        let file = riff(&[
            (b"fmt ", &fmt_body(1, 1, 16000, 16)),
            (b"data", &pcm_bytes(&input)),
        ]);
        let out = Wav::parse(&file, CAP).unwrap().to_pcm_8k();
        assert!(
            rms(&out[8..792]) < rms(&input) / 100.0,
            "{}",
            rms(&out[8..792])
        );
        // Full-scale input cannot wrap around.
        let square: Vec<i16> = (0..64)
            .map(|i| if i % 8 < 4 { 32767 } else { -32768 })
            .collect();
        let out = decimate_16k_to_8k(&square);
        assert_eq!(out.len(), 32);
        assert!(out[4..28].iter().any(|&s| s == i16::MAX || s == i16::MIN));
    }

    #[test]
    fn precise_errors() {
        let fmt = fmt_body(1, 1, 8000, 16);
        let data = pcm_bytes(&[0; 8]);
        let err = |file: &[u8]| Wav::parse(file, CAP).unwrap_err();

        assert_eq!(
            err(b"OggS\0\0\0\0WAVE"),
            WavError::NotRiff {
                found: ChunkId(*b"OggS")
            }
        );
        assert_eq!(
            err(b"RI"),
            WavError::NotRiff {
                found: ChunkId(*b"RI\0\0")
            }
        );
        assert_eq!(
            err(b"RIFF\x04\0\0\0AVI "),
            WavError::NotWave {
                found: ChunkId(*b"AVI ")
            }
        );
        assert_eq!(
            err(b"RIFF\x04\0\0\0WA"),
            WavError::TruncatedHeader { offset: 0 }
        );
        let mp3 = riff(&[(b"fmt ", &fmt_body(85, 1, 8000, 0)), (b"data", &data)]);
        assert_eq!(err(&mp3), WavError::UnsupportedFormatTag(85));
        assert_eq!(err(&mp3).to_string(), "unsupported format tag 85");
        let float = riff(&[(b"fmt ", &fmt_body(3, 1, 8000, 32)), (b"data", &data)]);
        assert_eq!(err(&float), WavError::UnsupportedFormatTag(3));
        let pcm8 = riff(&[(b"fmt ", &fmt_body(1, 1, 8000, 8)), (b"data", &data)]);
        assert_eq!(
            err(&pcm8),
            WavError::UnsupportedBitsPerSample {
                format_tag: 1,
                bits: 8
            }
        );
        let cd = riff(&[(b"fmt ", &fmt_body(1, 1, 44100, 16)), (b"data", &data)]);
        assert_eq!(
            err(&cd),
            WavError::UnsupportedSampleRate {
                format_tag: 1,
                rate: 44100
            }
        );
        let ulaw16k = riff(&[(b"fmt ", &fmt_body(7, 1, 16000, 8)), (b"data", &data)]);
        assert_eq!(
            err(&ulaw16k),
            WavError::UnsupportedSampleRate {
                format_tag: 7,
                rate: 16000
            }
        );
        let surround = riff(&[(b"fmt ", &fmt_body(1, 6, 8000, 16)), (b"data", &data)]);
        assert_eq!(err(&surround), WavError::UnsupportedChannels(6));
        let mut bad_align = fmt.clone();
        bad_align[12] = 4;
        let file = riff(&[(b"fmt ", &bad_align), (b"data", &data)]);
        assert_eq!(
            err(&file),
            WavError::BadBlockAlign {
                expected: 2,
                found: 4
            }
        );
        let file = riff(&[(b"fmt ", &fmt[..14]), (b"data", &data)]);
        assert_eq!(err(&file), WavError::FmtTooShort(14));
        assert_eq!(err(&riff(&[(b"fmt ", &fmt)])), WavError::MissingData);
        assert_eq!(err(&riff(&[(b"data", &data)])), WavError::MissingFmt);
        assert_eq!(err(&riff(&[])), WavError::MissingFmt);

        let good = riff(&[(b"fmt ", &fmt), (b"data", &data)]);
        assert_eq!(
            Wav::parse(&good, good.len() - 1),
            Err(WavError::TooLarge {
                len: good.len(),
                max: good.len() - 1
            })
        );
        assert_eq!(err(&mp3).class(), "unsupported_format");
    }

    #[test]
    fn truncated_files() {
        let samples: Vec<i16> = (0..100).collect();
        let good = riff(&[
            (b"fmt ", &fmt_body(1, 1, 8000, 16)),
            (b"data", &pcm_bytes(&samples)),
        ]);
        // A download cut in the middle of the data chunk: 44-byte header + 200 bytes.
        let cut = &good[..44 + 150];
        assert_eq!(
            Wav::parse(cut, CAP),
            Err(WavError::TruncatedChunk {
                chunk: ChunkId::DATA,
                offset: 36,
                declared: 200,
                available: 150
            })
        );
        assert_eq!(
            Wav::parse(cut, CAP).unwrap_err().to_string(),
            "truncated \"data\" chunk at offset 36: declares 200 bytes, 150 present"
        );
        // Cut inside the fmt chunk, and inside the data chunk header.
        assert!(matches!(
            Wav::parse(&good[..30], CAP),
            Err(WavError::TruncatedChunk {
                chunk: ChunkId::FMT,
                offset: 12,
                declared: 16,
                available: 10
            })
        ));
        assert_eq!(
            Wav::parse(&good[..40], CAP),
            Err(WavError::TruncatedHeader { offset: 36 })
        );
        // Every prefix is refused, none panics, and all refusals are "truncated" (or the
        // missing chunk when the cut falls exactly between chunks).
        for len in 0..good.len() {
            let e = Wav::parse(&good[..len], CAP).unwrap_err();
            assert!(
                matches!(e.class(), "truncated" | "not_riff" | "missing_chunk"),
                "{len}: {e}"
            );
        }
        // A RIFF size that overstates the file is tolerated when the chunks fit.
        let mut stale = good.clone();
        stale[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Wav::parse(&stale, CAP).unwrap().to_pcm_8k(), samples);
        // A data chunk size of 0xFFFFFFFF (a streaming writer that never patched it).
        let mut unpatched = good.clone();
        unpatched[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Wav::parse(&unpatched, CAP),
            Err(WavError::TruncatedChunk {
                chunk: ChunkId::DATA,
                ..
            })
        ));
    }

    #[test]
    fn recording_header_layout() {
        let h = recording_header(16000);
        let want: [u8; 44] = [
            b'R', b'I', b'F', b'F', 0xA4, 0x3E, 0x00, 0x00, // 36 + 16000
            b'W', b'A', b'V', b'E', b'f', b'm', b't', b' ', //
            16, 0, 0, 0, 1, 0, 1, 0, // fmt size 16, PCM, mono
            0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, // 8000 Hz, 16000 bytes/s
            2, 0, 16, 0, b'd', b'a', b't', b'a', // block align 2, 16 bits
            0x80, 0x3E, 0, 0, // 16000 data bytes
        ];
        assert_eq!(h, want);
    }

    #[test]
    fn writer_round_trips_through_the_parser() {
        let samples: Vec<i16> = (0..2000)
            .map(|i| ((i * 7919) % 65536 - 32768) as i16)
            .collect();
        let file = write_recording(&samples);
        assert_eq!(file.len(), 44 + 4000);
        let wav = Wav::parse(&file, CAP).unwrap();
        assert_eq!(
            wav.format(),
            WavFormat {
                encoding: WavEncoding::Pcm16,
                sample_rate: 8000,
                channels: 1
            }
        );
        assert_eq!(wav.to_pcm_8k(), samples);
        assert_eq!(wav.duration_ms(), 250);
        // An empty recording is still a valid file.
        let empty = write_recording(&[]);
        assert_eq!(Wav::parse(&empty, CAP).unwrap().frames(), 0);
    }

    #[test]
    fn incremental_recording_is_valid_after_patching() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 13) as i16).collect();
        // What a recorder does: placeholder header, append per packet, patch at the end.
        let mut file = recording_header(0).to_vec();
        let mut buf = [0u8; 2 * FRAME_SAMPLES];
        for packet in samples.chunks(FRAME_SAMPLES) {
            let n = pcm16_le(packet, &mut buf);
            file.extend_from_slice(&buf[..n]);
        }
        // Before patching the placeholder parses as an empty recording.
        assert_eq!(Wav::parse(&file, CAP).unwrap().frames(), 0);
        let written = (file.len() - RECORDING_HEADER_LEN) as u32;
        for (offset, bytes) in recording_size_patches(written) {
            let at = offset as usize;
            file[at..at + 4].copy_from_slice(&bytes);
        }
        assert_eq!(file, write_recording(&samples));

        // Crash recovery: sizes recomputed from the file length alone.
        let mut crashed = recording_header(0).to_vec();
        crashed.extend_from_slice(&file[RECORDING_HEADER_LEN..]);
        crashed.push(0x12); // half a sample written when it died
        let n = recovered_data_bytes(crashed.len() as u64);
        assert_eq!(n, 2000);
        assert!(patch_recording_sizes(&mut crashed, n));
        assert_eq!(Wav::parse(&crashed, CAP).unwrap().to_pcm_8k(), samples);
        assert!(!patch_recording_sizes(&mut [0u8; 10], 0));
        assert_eq!(recovered_data_bytes(3), 0);
    }

    #[test]
    fn pcm16_le_is_bounded_by_the_output() {
        let mut out = [0u8; 5];
        assert_eq!(pcm16_le(&[0x0102, -2, 7], &mut out), 4);
        assert_eq!(out, [0x02, 0x01, 0xFE, 0xFF, 0]);
    }

    #[test]
    fn chunk_ids_display_escaped() {
        assert_eq!(ChunkId(*b"fmt ").to_string(), "fmt ");
        assert_eq!(
            ChunkId([b'd', 0, 0xFF, b'\n']).to_string(),
            "d\\x00\\xff\\x0a"
        );
    }
}
