//! The prompt set position announcements are built from: one short clip
//! per word or phrase ("You are caller number", "three", "minutes", …),
//! named as in `assets/prompts/README.md`. The bundled English set is
//! inside the binary (so it cannot go missing); an entry's `prompts_dir`
//! replaces it with files of the same names, all of which must exist.
//!
//! `announcement` turns a position and an estimated wait into the clips
//! to play, in order.

use super::hold::{HoldError, HoldLoop};
use super::prompt::Prompt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The prompt files, named once: the list every set must hold and the
/// bundled set's bytes both come from it.
macro_rules! prompt_files {
    ($($name:literal),* $(,)?) => {
        /// Every file a prompt set holds, without the `.wav` extension.
        pub const FILES: &[&str] = &[$($name),*];

        /// The bundled set, as committed under `assets/prompts`.
        fn bundled_files() -> Vec<(&'static str, &'static [u8])> {
            vec![$(($name, &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/prompts/", $name, ".wav"))[..])),*]
        }
    };
}

prompt_files!(
    "caller_number",
    "estimated_wait",
    "less_than_a_minute",
    "about",
    "minute",
    "minutes",
    "more_than",
    "thank_you",
    "n1",
    "n2",
    "n3",
    "n4",
    "n5",
    "n6",
    "n7",
    "n8",
    "n9",
    "n10",
    "n11",
    "n12",
    "n13",
    "n14",
    "n15",
    "n16",
    "n17",
    "n18",
    "n19",
    "n20",
    "n30",
    "n40",
    "n50",
    "n60",
    "n70",
    "n80",
    "n90",
);

/// Largest number said as a number; beyond it, "more than ninety nine".
const LARGEST: u64 = 99;

/// Why a prompt set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    /// A file of the set is missing from the directory.
    #[error(
        "{dir}: missing {file}.wav (a prompt set needs every file listed in assets/prompts/README.md)"
    )]
    Missing { dir: PathBuf, file: &'static str },
    /// A file of the set is there but is no usable audio.
    #[error("{0}")]
    Audio(#[from] HoldError),
}

/// An estimated wait, as an announcement says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// "less than one minute".
    UnderAMinute,
    /// "about N minute(s)", N ≥ 1.
    AboutMinutes(u64),
}

/// Decoded clips by file name.
#[derive(Debug)]
pub struct PromptSet {
    clips: HashMap<&'static str, Arc<HoldLoop>>,
}

impl PromptSet {
    /// The bundled English set, decoded once per process.
    pub fn bundled() -> Arc<PromptSet> {
        static SET: OnceLock<Arc<PromptSet>> = OnceLock::new();
        SET.get_or_init(|| {
            let clips = bundled_files()
                .into_iter()
                .filter_map(|(name, bytes)| {
                    // Committed files that decode (a unit test checks each).
                    let clip = HoldLoop::from_bytes(bytes.to_vec(), &format!("{name}.wav")).ok()?;
                    Some((name, Arc::new(clip)))
                })
                .collect();
            Arc::new(PromptSet { clips })
        })
        .clone()
    }

    /// Loads every file of the set from `dir` (`<name>.wav`, or the same
    /// name with any extension symphonia reads: `.flac`, `.ogg`, `.mp3`).
    pub fn load(dir: &Path) -> Result<PromptSet, PromptsError> {
        let mut clips = HashMap::new();
        for &name in FILES {
            let path = ["wav", "flac", "ogg", "mp3"]
                .iter()
                .map(|ext| dir.join(format!("{name}.{ext}")))
                .find(|p| p.is_file())
                .ok_or_else(|| PromptsError::Missing {
                    dir: dir.to_path_buf(),
                    file: name,
                })?;
            clips.insert(name, Arc::new(HoldLoop::load(&path)?));
        }
        Ok(PromptSet { clips })
    }

    /// Encodes every clip for Opus now (see `HoldLoop::prepare_opus`).
    pub fn prepare_opus(&self) {
        self.clips.values().for_each(|c| c.prepare_opus());
    }

    fn clip(&self, name: &str, out: &mut Vec<Arc<HoldLoop>>) {
        if let Some(c) = self.clips.get(name) {
            out.push(c.clone());
        }
    }

    /// The clips that say `n` ("twenty" + "three"; "more than" "ninety"
    /// "nine" beyond 99).
    fn number(&self, n: u64, out: &mut Vec<Arc<HoldLoop>>) {
        if n > LARGEST {
            self.clip("more_than", out);
        }
        let n = n.clamp(1, LARGEST);
        if n < 20 {
            self.clip(&format!("n{n}"), out);
        } else {
            self.clip(&format!("n{}", n / 10 * 10), out);
            if !n.is_multiple_of(10) {
                self.clip(&format!("n{}", n % 10), out);
            }
        }
    }

    /// "You are caller number {position}. [Your estimated wait is {wait}.]
    /// Thank you for waiting." The wait is left out when there is no
    /// estimate (no call of the entry was bridged recently).
    pub fn announcement(&self, position: u64, wait: Option<Wait>) -> Prompt {
        let mut clips = Vec::new();
        self.clip("caller_number", &mut clips);
        self.number(position, &mut clips);
        match wait {
            None => {}
            Some(Wait::UnderAMinute) => {
                self.clip("estimated_wait", &mut clips);
                self.clip("less_than_a_minute", &mut clips);
            }
            Some(Wait::AboutMinutes(m)) => {
                self.clip("estimated_wait", &mut clips);
                self.clip("about", &mut clips);
                self.number(m, &mut clips);
                self.clip(if m == 1 { "minute" } else { "minutes" }, &mut clips);
            }
        }
        self.clip("thank_you", &mut clips);
        Prompt::new(clips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_set_is_complete_and_every_file_decodes() {
        let set = PromptSet::bundled();
        for name in FILES {
            let clip = set.clips.get(name).unwrap_or_else(|| panic!("{name}"));
            // Every clip is speech: at least a quarter of a second.
            assert!(clip.frames() >= 12, "{name}: {} frames", clip.frames());
        }
        let names: Vec<&str> = bundled_files().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, FILES);
    }

    /// The file names an announcement is made of, in order.
    fn said(set: &PromptSet, position: u64, wait: Option<Wait>) -> Vec<&'static str> {
        let prompt = set.announcement(position, wait);
        let by_clip: Vec<(&'static str, &Arc<HoldLoop>)> =
            set.clips.iter().map(|(n, c)| (*n, c)).collect();
        let frames = prompt.frames();
        let mut names = Vec::new();
        let mut total = 0;
        for clip in prompt_clips(&prompt) {
            let name = by_clip
                .iter()
                .find(|(_, c)| Arc::ptr_eq(c, &clip))
                .map(|(n, _)| *n)
                .expect("a clip of the set");
            total += u64::from(clip.frames());
            names.push(name);
        }
        assert_eq!(total, frames);
        names
    }

    fn prompt_clips(p: &Prompt) -> Vec<Arc<HoldLoop>> {
        p.clips().to_vec()
    }

    #[test]
    fn announcements_say_the_position_and_the_wait() {
        let set = PromptSet::bundled();
        assert_eq!(said(&set, 3, None), ["caller_number", "n3", "thank_you"]);
        assert_eq!(
            said(&set, 23, Some(Wait::UnderAMinute)),
            [
                "caller_number",
                "n20",
                "n3",
                "estimated_wait",
                "less_than_a_minute",
                "thank_you"
            ]
        );
        assert_eq!(
            said(&set, 40, Some(Wait::AboutMinutes(1))),
            [
                "caller_number",
                "n40",
                "estimated_wait",
                "about",
                "n1",
                "minute",
                "thank_you"
            ]
        );
        assert_eq!(
            said(&set, 250, Some(Wait::AboutMinutes(12))),
            [
                "caller_number",
                "more_than",
                "n90",
                "n9",
                "estimated_wait",
                "about",
                "n12",
                "minutes",
                "thank_you"
            ]
        );
    }

    #[test]
    fn a_directory_missing_a_file_is_named() {
        let dir = std::env::temp_dir().join(format!("pinless-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = PromptSet::load(&dir).unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            err.to_string()
                .starts_with(&format!("{}: missing caller_number.wav", dir.display())),
            "{err}"
        );
    }
}
