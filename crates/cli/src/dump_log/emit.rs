//! How everything reaches the output: in text, Kafka's lines; in JSON, one object per line,
//! each with a `type` so a reader can tell batches, records, entries, problems and notes apart.

use std::fmt;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::{Dumper, Output};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    problem: &'static str,
    message: &'a str,
}

impl Dumper<'_> {
    pub(super) fn json(&self) -> bool {
        self.args.output == Output::Json
    }

    pub(super) fn emit_json(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, value)?;
        writeln!(self.out)
    }

    /// A batch or record line, in the output format.
    pub(super) fn emit_line(&mut self, line: &(impl Serialize + fmt::Display)) -> io::Result<()> {
        if self.json() {
            self.emit_json(line)
        } else {
            writeln!(self.out, "{line}")
        }
    }

    /// Something invalid: printed and counted (exit status 1).
    pub(super) fn problem(
        &mut self,
        file: &Path,
        problem: &'static str,
        message: String,
    ) -> io::Result<()> {
        self.totals.problems += 1;
        if self.json() {
            let file = file.display().to_string();
            self.emit_json(&ProblemJson {
                kind: "problem",
                file: &file,
                problem,
                message: &message,
            })
        } else {
            writeln!(self.out, "{message}")
        }
    }

    /// A file that cannot be read: a problem like any other, so the other files still get
    /// dumped.
    pub(super) fn cannot_read(&mut self, path: &Path, e: io::Error) -> io::Result<()> {
        self.problem(path, "io", format!("Cannot read {}: {e}", path.display()))
    }

    /// Information that is not a problem.
    pub(super) fn note(&mut self, file: &Path, message: String) -> io::Result<()> {
        if self.json() {
            let file = file.display().to_string();
            self.emit_json(&serde_json::json!({"type": "note", "file": file, "message": message}))
        } else {
            writeln!(self.out, "{message}")
        }
    }
}
