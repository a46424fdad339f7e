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

/// The PCM sample rates we take (telephone to studio).
pub const MIN_PCM_RATE: u32 = 8000;
pub const MAX_PCM_RATE: u32 = 48_000;

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
        // Other PCM rates are resampled to 8 kHz once, when loaded (media/resample.rs).
        WAVE_FORMAT_PCM => (
            WavEncoding::Pcm16,
            16,
            (MIN_PCM_RATE..=MAX_PCM_RATE).contains(&sample_rate),
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
        match self.format.sample_rate {
            8000 => mono,
            16000 => decimate_16k_to_8k(&mono),
            rate => super::resample::to_8k(&mono, rate),
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
#[path = "wav_tests.rs"]
mod tests;
