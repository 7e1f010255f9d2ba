//! Turning command-line paths into inputs: directories expand to the
//! captures directly inside them, "-" is stdin.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::chunk::ChunkInput;
use super::compressed::Compression;
use super::mapped::MappedFile;
use super::native::{describe_io, sniff};
use super::OpenError;

/// One input to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum InputSpec {
    Stdin,
    File(PathBuf),
}

impl InputSpec {
    /// The name used in reports and errors.
    pub fn display(&self) -> String {
        match self {
            InputSpec::Stdin => "-".into(),
            InputSpec::File(p) => p.display().to_string(),
        }
    }
}

fn open_error(path: &Path, message: impl Into<String>) -> OpenError {
    OpenError {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Expands `paths` into inputs, plus warnings about files skipped inside
/// directories (the caller decides how to show them).
pub(crate) fn expand<P: AsRef<Path>>(
    paths: &[P],
) -> Result<(Vec<InputSpec>, Vec<String>), OpenError> {
    let mut specs = Vec::new();
    let mut warnings = Vec::new();
    let mut stdin_seen = false;
    for path in paths {
        let path = path.as_ref();
        if path.as_os_str() == "-" {
            if stdin_seen {
                return Err(open_error(path, "standard input given more than once"));
            }
            stdin_seen = true;
            specs.push(InputSpec::Stdin);
        } else if path.is_dir() {
            specs.extend(expand_dir(path, &mut warnings)?);
        } else {
            specs.push(InputSpec::File(path.to_path_buf()));
        }
    }
    if specs.len() > usize::from(u16::MAX) {
        return Err(OpenError {
            path: String::new(),
            message: format!("too many inputs ({}; at most {})", specs.len(), u16::MAX),
        });
    }
    Ok((specs, warnings))
}

/// The capture files directly inside `dir`, sorted by name.
fn expand_dir(dir: &Path, warnings: &mut Vec<String>) -> Result<Vec<InputSpec>, OpenError> {
    let entries = fs::read_dir(dir).map_err(|e| open_error(dir, describe_io(&e)))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| open_error(dir, describe_io(&e)))?;
        let path = entry.path();
        // Follows symlinks; subdirectories and special files are not inputs.
        if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    files.sort();
    let mut specs = Vec::new();
    for path in files {
        let mut head = [0u8; 4];
        let n = read_head(&path, &mut head).map_err(|e| open_error(&path, describe_io(&e)))?;
        if sniff(&head[..n]).is_some() {
            specs.push(InputSpec::File(path));
        } else {
            warnings.push(format!(
                "{}: skipped, not a pcap or pcapng capture",
                path.display()
            ));
        }
    }
    if specs.is_empty() {
        return Err(open_error(dir, "no pcap or pcapng captures in directory"));
    }
    Ok(specs)
}

/// Reads up to `head.len()` bytes from the start of `path`, decompressed
/// when it is a compressed capture.
fn read_head(path: &Path, head: &mut [u8]) -> std::io::Result<usize> {
    let mut file = fs::File::open(path)?;
    let n = read_head_of(&mut file, head)?;
    match Compression::sniff(&head[..n]) {
        Some(c) => {
            let mut inner = c.decoder(Box::new(fs::File::open(path)?));
            read_head_of(&mut inner, head)
        }
        None => Ok(n),
    }
}

/// Reads up to `head.len()` bytes of `r`.
fn read_head_of(r: &mut dyn Read, head: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match r.read(head.get_mut(n..).unwrap_or(&mut [])) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Opens `spec` for reading: a regular file mapped `map_window` bytes at a
/// time when that is given, anything else (stdin, a pipe, a device) read.
pub(crate) fn open_reader(
    spec: &InputSpec,
    map_window: Option<usize>,
) -> Result<(ChunkInput, Option<usize>), OpenError> {
    match spec {
        InputSpec::Stdin => {
            // Peeked, not consumed: a compressed stream is decoded.
            let mut stdin = std::io::BufReader::new(std::io::stdin());
            let head = std::io::BufRead::fill_buf(&mut stdin)
                .map_err(|e| open_error(Path::new("-"), describe_io(&e)))?;
            Ok(match Compression::sniff(head) {
                Some(c) => (ChunkInput::Stream(c.decoder(Box::new(stdin))), None),
                None => (ChunkInput::Stream(Box::new(stdin)), None),
            })
        }
        InputSpec::File(path) => {
            if path.is_dir() {
                return Err(open_error(path, "is a directory"));
            }
            let mut file = fs::File::open(path).map_err(|e| open_error(path, describe_io(&e)))?;
            let mut head = [0u8; 4];
            let n = read_head_of(&mut file, &mut head)
                .and_then(|n| {
                    use std::io::Seek;
                    file.rewind().map(|()| n)
                })
                .map_err(|e| open_error(path, describe_io(&e)))?;
            if let Some(c) = Compression::sniff(&head[..n]) {
                return Ok((ChunkInput::Stream(c.decoder(Box::new(file))), None));
            }
            match map_window {
                Some(w) => match MappedFile::new(file) {
                    Ok(m) => Ok((ChunkInput::Mapped(m), Some(w))),
                    Err(file) => Ok((ChunkInput::Stream(Box::new(file)), None)),
                },
                None => Ok((ChunkInput::Stream(Box::new(file)), None)),
            }
        }
    }
}
