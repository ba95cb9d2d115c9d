//! Where bytes come from and go to: a file, `-` (standard input or output),
//! or `s3://bucket/key`, always streamed. Outputs are all-or-nothing where the
//! medium allows: a file is written to a temporary name and renamed on
//! success; an S3 upload is completed on success and aborted otherwise.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use vault::aws::objects::{MultipartWriter, S3Objects};
use vault::ports::objects::{ObjectStore, S3Location, Upload, WriteOptions};

use crate::CliError;

/// An input or output named on the command line.
#[derive(Clone, Debug)]
pub enum Place {
    Std,
    File(PathBuf),
    S3(S3Location),
}

impl Place {
    pub fn parse(s: &str) -> Result<Self, CliError> {
        if s == "-" {
            Ok(Self::Std)
        } else if s.starts_with("s3://") {
            S3Location::parse(s)
                .map(Self::S3)
                .ok_or_else(|| CliError::usage(format!("{s} is not an S3 location: use s3://bucket/key")))
        } else {
            Ok(Self::File(PathBuf::from(s)))
        }
    }
}

/// An opened input.
pub struct Source {
    pub reader: Box<dyn Read + Send>,
    /// Total length, when known without reading it all.
    pub len: Option<u64>,
}

/// Opens `place` for reading from position `offset`, up to `end`. Both
/// apply to files and S3 objects; standard input is read as it comes, so a
/// caller that reads a stream's header goes on reading its body from it.
pub fn open_source(
    handle: &Handle,
    s3: &S3Objects,
    place: &Place,
    offset: u64,
    end: Option<u64>,
) -> Result<Source, CliError> {
    match place {
        Place::Std => Ok(Source { reader: Box::new(io::stdin()), len: None }),
        Place::File(path) => {
            let mut f = File::open(path).map_err(|e| CliError::io(format!("cannot open {}", path.display()), e))?;
            let len = f.metadata().map_err(|e| CliError::io(format!("cannot stat {}", path.display()), e))?.len();
            f.seek(SeekFrom::Start(offset)).map_err(|e| CliError::io("cannot seek", e))?;
            let reader: Box<dyn Read + Send> = match end {
                Some(end) => Box::new(io::BufReader::with_capacity(1 << 16, f).take(end.saturating_sub(offset))),
                None => Box::new(io::BufReader::with_capacity(1 << 16, f)),
            };
            Ok(Source { reader, len: Some(len) })
        }
        Place::S3(loc) => {
            let len = handle.block_on(s3.size(loc))?;
            let range = (offset > 0 || end.is_some()).then(|| offset..end.unwrap_or(len).min(len));
            let reader = handle.block_on(s3.read(loc, None, range))?.into_blocking_read(handle);
            Ok(Source { reader: Box::new(io::BufReader::with_capacity(1 << 16, reader)), len: Some(len) })
        }
    }
}

/// An opened output; dropped without [`Sink::commit`], it leaves nothing.
pub struct Sink {
    inner: Option<SinkKind>,
}

enum SinkKind {
    Stdout(BufWriter<io::Stdout>),
    File { file: BufWriter<File>, tmp: PathBuf, dest: PathBuf },
    S3(Box<MultipartWriter>),
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    dest.with_file_name(format!(".{name}.callvault-{}.tmp", std::process::id()))
}

impl Sink {
    /// Opens `place` for writing. `private` creates files readable by the
    /// owner only (decrypted recordings).
    pub fn open(handle: &Handle, s3: &S3Objects, place: &Place, private: bool) -> Result<Self, CliError> {
        let kind = match place {
            Place::Std => SinkKind::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())),
            Place::File(dest) => {
                let tmp = temp_path(dest);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                if private {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let _ = private;
                let file = opts.open(&tmp).map_err(|e| CliError::io(format!("cannot create {}", tmp.display()), e))?;
                SinkKind::File { file: BufWriter::with_capacity(1 << 16, file), tmp, dest: dest.clone() }
            }
            Place::S3(loc) => SinkKind::S3(Box::new(s3.upload(handle, loc, WriteOptions::default()))),
        };
        Ok(Self { inner: Some(kind) })
    }

    /// Makes the output visible: flush and rename, or complete the upload.
    pub fn commit(mut self) -> Result<(), CliError> {
        match self.inner.take() {
            Some(SinkKind::Stdout(mut w)) => w.flush().map_err(|e| CliError::io("cannot write to standard output", e)),
            Some(SinkKind::File { file, tmp, dest }) => {
                let result = file
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(|f| f.sync_all())
                    .and_then(|_| std::fs::rename(&tmp, &dest));
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(CliError::io(format!("cannot write {}", dest.display()), e));
                }
                Ok(())
            }
            Some(SinkKind::S3(w)) => w.finish().map(|_| ()).map_err(CliError::from),
            None => Ok(()),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(SinkKind::Stdout(w)) => w.write(buf),
            Some(SinkKind::File { file, .. }) => file.write(buf),
            Some(SinkKind::S3(w)) => w.write(buf),
            None => Err(io::Error::other("output already closed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        match self.inner.take() {
            Some(SinkKind::File { file, tmp, .. }) => {
                drop(file);
                let _ = std::fs::remove_file(&tmp);
            }
            Some(SinkKind::S3(mut w)) => w.abort(),
            _ => {}
        }
    }
}

/// Counts bytes through a reader and, when standard error is a terminal and
/// the input is large, shows progress there.
pub struct Progress<R> {
    inner: R,
    done: u64,
    total: Option<u64>,
    verb: &'static str,
    last: Instant,
    show: bool,
}

impl<R: Read> Progress<R> {
    pub fn new(inner: R, total: Option<u64>, verb: &'static str) -> Self {
        let show = io::stderr().is_terminal() && total.is_none_or(|t| t >= 16 << 20);
        Self { inner, done: 0, total, verb, last: Instant::now(), show }
    }

    fn print(&self, end: bool) {
        let mib = self.done as f64 / (1 << 20) as f64;
        let line = match self.total {
            Some(t) if t > 0 => format!(
                "{} {mib:.0} MiB of {:.0} MiB ({:.0}%)",
                self.verb,
                t as f64 / (1 << 20) as f64,
                100.0 * self.done as f64 / t as f64
            ),
            _ => format!("{} {mib:.0} MiB", self.verb),
        };
        eprint!("\r{line}{}", if end { "\n" } else { "" });
    }

    pub fn finish(&self) {
        if self.show {
            self.print(true);
        }
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.show && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            self.print(false);
        }
        Ok(n)
    }
}
