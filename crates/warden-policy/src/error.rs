use std::path::PathBuf;

/// Everything that can go wrong loading a bundle or running its tests.
///
/// Evaluation itself never returns an error: a policy that fails at call time
/// denies, with a reason starting `policy error:`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Rego file does not parse or does not compile.
    #[error("{file}:{line}:{column}: {message}")]
    Rego {
        /// The Rego file.
        file: PathBuf,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// A data file is not valid JSON or YAML, or is not an object, or two
    /// data files set the same path to different values.
    #[error("{file}: {message}")]
    Data {
        /// The data file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An ad-hoc [`crate::RegoQuery`] failed.
    #[error("query `{query}` failed: {message}")]
    Query {
        /// The query.
        query: String,
        /// What went wrong.
        message: String,
    },
    /// The bundle as a whole does not compile (an error without a location).
    #[error("bundle {dir} does not compile: {message}")]
    Bundle {
        /// The bundle directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The bundle's settings under `data.warden.config` are malformed, e.g.
    /// `data.warden.config.environments` names a default it does not know.
    /// The message starts with the offending path.
    #[error("bundle {dir}: {message}")]
    Config {
        /// The bundle directory.
        dir: PathBuf,
        /// What is wrong, starting with the path (`data.warden.config.environments.default ...`).
        message: String,
    },
    /// An environment name the bundle does not know, after trimming,
    /// lowercasing and mapping aliases (see [`crate::Environments::canonical`]).
    #[error("{}", crate::env::unknown_message(.name, .known))]
    UnknownEnvironment {
        /// The name as given.
        name: String,
        /// The bundle's canonical names, sorted; empty when the bundle lists
        /// none.
        known: Vec<String>,
    },
}

impl PolicyError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PolicyError::Io {
            path: path.into(),
            source,
        }
    }

    /// Turn a regorus error into a located error when its text carries a
    /// `--> file:line:col` marker, else a bundle-level error.
    pub(crate) fn from_regorus(dir: &std::path::Path, err: &impl std::fmt::Display) -> Self {
        let text = err.to_string();
        match locate(&text) {
            Some((file, line, column)) => PolicyError::Rego {
                file: PathBuf::from(file),
                line,
                column,
                message: message_of(&text),
            },
            None => PolicyError::Bundle {
                dir: dir.to_path_buf(),
                message: text.trim().to_string(),
            },
        }
    }
}

/// Find the first `--> file:line:col` marker regorus puts in its errors.
pub(crate) fn locate(text: &str) -> Option<(String, u32, u32)> {
    let start = text.find("--> ")? + 4;
    let rest = &text[start..];
    let marker = rest.lines().next()?.trim();
    let mut parts = marker.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let file = parts.next()?.to_string();
    Some((file, line, column))
}

/// The human part of a regorus error: the text after the last `error: `,
/// or the whole text squeezed onto one line.
pub(crate) fn message_of(text: &str) -> String {
    let message = match text.rfind("error: ") {
        Some(at) => &text[at + 7..],
        None => text,
    };
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_file_line_and_column_in_regorus_errors() {
        let text = "\n--> policies/a.rego:4:1\n  |\n4 | }\n  | ^\nerror: expecting expression";
        assert_eq!(locate(text), Some(("policies/a.rego".into(), 4, 1)));
        assert_eq!(message_of(text), "expecting expression");
    }
}
