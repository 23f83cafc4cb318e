//! A WAV file (RIFF, PCM, 16-bit) that is valid after every chunk it
//! writes: the audio is appended, then the two sizes in the header are
//! written again. A process killed between two chunks leaves a file any
//! player opens, holding every chunk but the one under way; a file whose
//! last chunk was cut short (a crash inside the write) is mended when it
//! is opened again to go on recording (`Wav::append`).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The header's length: RIFF, `fmt ` and `data` chunk headers.
pub const HEADER_LEN: u64 = 44;

/// What a WAV file holds, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub sample_rate: u32,
    pub channels: u16,
}

impl Format {
    /// Bytes per frame (one sample of each channel).
    pub fn frame_bytes(self) -> u64 {
        2 * u64::from(self.channels)
    }
}

/// A WAV file being written.
pub struct Wav {
    file: File,
    format: Format,
    /// Bytes of audio in the file (after the header).
    data: u64,
}

/// Why a WAV file could not be written or opened again.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file to go on with is not one of ours, or another format.
    #[error("not a recording in this format: {0}")]
    Format(String),
    /// The file outgrew what a WAV header can count (4 GiB).
    #[error("the file reached the WAV size limit (4 GiB)")]
    TooLong,
}

impl Wav {
    /// Creates the file (it must not exist) with an empty, valid header.
    pub fn create(path: &Path, format: Format) -> Result<Wav, WavError> {
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(path)?;
        let mut wav = Wav {
            file,
            format,
            data: 0,
        };
        wav.file.write_all(&header(format, 0))?;
        Ok(wav)
    }

    /// Opens a file this module wrote, to append to it: its format must be
    /// `format`. A last chunk cut short is cut to whole frames and the
    /// header mended.
    pub fn append(path: &Path, format: Format) -> Result<Wav, WavError> {
        let mut file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut head = [0u8; HEADER_LEN as usize];
        file.read_exact(&mut head)
            .map_err(|e| WavError::Format(format!("header unreadable: {e}")))?;
        let expected = header(format, 0);
        // Everything but the two sizes must be what we write.
        if head[..4] != expected[..4] || head[8..40] != expected[8..40] {
            return Err(WavError::Format(format!(
                "expected {} Hz, {} channels, 16-bit PCM",
                format.sample_rate, format.channels
            )));
        }
        let len = file.metadata()?.len().saturating_sub(HEADER_LEN);
        let data = len - len % format.frame_bytes();
        file.set_len(HEADER_LEN + data)?;
        let mut wav = Wav { file, format, data };
        wav.write_sizes()?;
        Ok(wav)
    }

    /// Appends `pcm` (little-endian 16-bit frames, as `interleave` makes
    /// them) and makes the header count it.
    pub fn write_chunk(&mut self, pcm: &[u8]) -> Result<(), WavError> {
        if pcm.is_empty() {
            return Ok(());
        }
        let data = self.data + pcm.len() as u64;
        if HEADER_LEN + data > u64::from(u32::MAX) {
            return Err(WavError::TooLong);
        }
        // Positioned writes: no seek before each, three calls a chunk.
        self.file.write_all_at(pcm, HEADER_LEN + self.data)?;
        self.data = data;
        self.write_sizes()
    }

    /// Frames in the file.
    pub fn frames(&self) -> u64 {
        self.data / self.format.frame_bytes()
    }

    /// The file's length in bytes.
    pub fn bytes(&self) -> u64 {
        HEADER_LEN + self.data
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes what the OS holds of the file to the disk.
    pub fn sync(&self) -> Result<(), WavError> {
        Ok(self.file.sync_all()?)
    }

    fn write_sizes(&mut self) -> Result<(), WavError> {
        let riff = u32::try_from(HEADER_LEN - 8 + self.data).map_err(|_| WavError::TooLong)?;
        let data = u32::try_from(self.data).map_err(|_| WavError::TooLong)?;
        self.file.write_all_at(&riff.to_le_bytes(), 4)?;
        self.file.write_all_at(&data.to_le_bytes(), 40)?;
        Ok(())
    }
}

/// The 44-byte header of a PCM file with `data` bytes of audio.
fn header(format: Format, data: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    let frame = format.frame_bytes() as u32;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&format.channels.to_le_bytes());
    h[24..28].copy_from_slice(&format.sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(format.sample_rate * frame).to_le_bytes());
    h[32..34].copy_from_slice(&(frame as u16).to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// Interleaves two channels of equal length into little-endian frames,
/// appended to `out`.
pub fn interleave(left: &[i16], right: &[i16], out: &mut Vec<u8>) {
    let n = left.len().min(right.len());
    let start = out.len();
    // Sized once, then filled in place: pushing two bytes at a time was
    // the writer's largest cost (a fifth of its thread in `bench hold
    // --record`).
    out.resize(start + n * 4, 0);
    let frames = out[start..].chunks_exact_mut(4);
    for ((frame, l), r) in frames.zip(left).zip(right) {
        let (a, b) = frame.split_at_mut(2);
        a.copy_from_slice(&l.to_le_bytes());
        b.copy_from_slice(&r.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEREO_8K: Format = Format {
        sample_rate: 8000,
        channels: 2,
    };

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pinless-wav-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn sizes(bytes: &[u8]) -> (u32, u32) {
        let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap());
        (riff, data)
    }

    #[test]
    fn the_header_counts_every_chunk_as_it_is_written() {
        let path = dir().join("a.wav");
        let mut wav = Wav::create(&path, STEREO_8K).unwrap();
        assert_eq!(sizes(&std::fs::read(&path).unwrap()), (36, 0));
        let mut pcm = Vec::new();
        interleave(&[1, 2, 3], &[-1, -2, -3], &mut pcm);
        wav.write_chunk(&pcm).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(sizes(&bytes), (36 + 12, 12));
        assert_eq!(&bytes[44..48], &[1, 0, 0xFF, 0xFF]);
        assert_eq!(wav.frames(), 3);
        // A second file of the same name is refused, never overwritten.
        assert!(Wav::create(&path, STEREO_8K).is_err());
    }

    #[test]
    fn a_chunk_cut_short_is_mended_and_appended_to() {
        let path = dir().join("b.wav");
        let mut wav = Wav::create(&path, STEREO_8K).unwrap();
        wav.write_chunk(&[0u8; 40]).unwrap();
        drop(wav);
        // A crash inside the next write: 6 bytes landed, the header not
        // updated.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[7u8; 6]).unwrap();
        drop(f);
        let mut wav = Wav::append(&path, STEREO_8K).unwrap();
        assert_eq!(wav.frames(), 11, "10 frames, then one whole of the 6 bytes");
        wav.write_chunk(&[9u8; 4]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 48);
        assert_eq!(sizes(&bytes), (36 + 48, 48));
        let wide = Format {
            sample_rate: 16000,
            channels: 2,
        };
        assert!(matches!(Wav::append(&path, wide), Err(WavError::Format(_))));
    }
}
