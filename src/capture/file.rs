//! [`FileSource`]: capture files (and stdin) read by the native reader,
//! filtered, and merged by timestamp.

use std::io::Read;
use std::path::Path;

use super::chunk::ChunkInput;
use super::filter::FilterSet;
use super::merge::{MergeInput, Merger};
use super::native::NativeInput;
use super::paths::{expand, open_reader, InputSpec};
use super::{FrameBatch, InputInfo, OpenError, ReaderOptions, Source, SourceError};

/// Frames from one or more pcap / pcapng inputs, merged by timestamp.
pub struct FileSource {
    merger: Merger<NativeInput>,
}

impl FileSource {
    /// Opens `paths` ("-" is stdin; a directory stands for the captures
    /// directly inside it) with an optional BPF `filter`. Returns the source
    /// and warnings about files skipped inside directories.
    pub fn open<P: AsRef<Path>>(
        paths: &[P],
        filter: Option<&str>,
    ) -> Result<(FileSource, Vec<String>), SourceError> {
        Self::open_with(paths, filter, &ReaderOptions::default())
    }

    /// [`open`](Self::open) with explicit reader options.
    pub fn open_with<P: AsRef<Path>>(
        paths: &[P],
        filter: Option<&str>,
        options: &ReaderOptions,
    ) -> Result<(FileSource, Vec<String>), SourceError> {
        let (specs, warnings) = expand(paths)?;
        // Inputs merged together share one window's worth of mappings.
        let map_window = options
            .map_window
            .map(|w| (w / specs.len().max(1)).max(MIN_MAP_WINDOW));
        let mut readers = Vec::with_capacity(specs.len());
        for spec in &specs {
            let (input, window) = open_reader(spec, map_window)?;
            // A small file gets a small chunk: many inputs merged at once
            // must not each hold a full-size chunk.
            let chunk = match (window, spec) {
                (Some(w), _) => w,
                (None, InputSpec::File(p)) => {
                    std::fs::metadata(p).map_or(options.chunk_size, |m| {
                        options
                            .chunk_size
                            .min((m.len() as usize).saturating_add(1).max(SMALL_CHUNK))
                    })
                }
                (None, InputSpec::Stdin) => options.chunk_size,
            };
            readers.push((spec.display(), input, chunk));
        }
        Ok((Self::from_sized_readers(readers, filter)?, warnings))
    }

    /// A source over already-open byte streams, each named for reports
    /// (used for stdin and in tests).
    pub fn from_readers(
        readers: Vec<(String, Box<dyn Read + Send>)>,
        filter: Option<&str>,
        options: &ReaderOptions,
    ) -> Result<FileSource, SourceError> {
        let size = options.chunk_size;
        Self::from_sized_readers(
            readers
                .into_iter()
                .map(|(n, r)| (n, ChunkInput::Stream(r), size))
                .collect(),
            filter,
        )
    }

    /// Each reader with its own chunk size.
    fn from_sized_readers(
        readers: Vec<(String, ChunkInput, usize)>,
        filter: Option<&str>,
    ) -> Result<FileSource, SourceError> {
        if readers.len() > usize::from(u16::MAX) {
            return Err(OpenError {
                path: String::new(),
                message: format!("too many inputs ({}; at most {})", readers.len(), u16::MAX),
            }
            .into());
        }
        let mut filters = FilterSet::new(filter);
        let mut inputs = Vec::with_capacity(readers.len());
        for (name, reader, chunk_size) in readers {
            let input = NativeInput::open(&name, reader, chunk_size)?;
            for &link in input.link_types().iter().filter(|l| l.is_supported()) {
                filters.prepare(link)?;
            }
            inputs.push(input);
        }
        Ok(FileSource {
            merger: Merger::new(inputs, filters),
        })
    }
}

/// The smallest chunk given to a file by its size hint.
const SMALL_CHUNK: usize = 64 * 1024;

/// The smallest mapping window, however many inputs share the default.
const MIN_MAP_WINDOW: usize = 256 * 1024;

impl Source for FileSource {
    fn next_batch(&mut self, max_frames: usize) -> Option<FrameBatch> {
        self.merger.next_batch(max_frames)
    }

    fn inputs(&self) -> Vec<InputInfo> {
        self.merger.inputs()
    }

    fn progress(&self) -> Option<(u64, u64)> {
        self.merger.progress()
    }
}
