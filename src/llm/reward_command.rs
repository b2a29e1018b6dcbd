//! An external reward command (`[task] name = "command"`), so a user can
//! plug in any reward model: ftb starts the program once and talks JSON
//! lines with it for the whole run.
//!
//! Protocol, per batch (the whole batch is written, then the replies read):
//! * ftb writes one line per sample to the command's stdin:
//!   `{"prompt": "3+4=", "response": "7", "prompt_index": 5, "finished": true}`
//!   (`response` is the decoded answer without its stop token; `finished`
//!   says whether it stopped, rather than running into `max_len`);
//! * the command writes one line per sample to stdout, in the same order:
//!   `{"reward": 1.5}` or a bare number `1.5`. The reward is `r(x, y)` in
//!   the target `pi_ref exp(r / beta)`, so a log-reward is allowed (any
//!   finite number). Whatever it prints on stderr is kept (the last lines
//!   are quoted when it fails).
//!
//! The command must flush stdout after each batch (Python: `print(...,
//! flush=True)`) and exit when stdin closes. A minimal reward script:
//!
//! ```python
//! import json, sys
//! for line in sys.stdin:
//!     s = json.loads(line)
//!     print(json.dumps({"reward": float(s["response"] == "7")}), flush=True)
//! ```
//!
//! Errors name the command: it cannot start; it exits (its exit status and
//! last stderr lines); a reply line is not a reward (quoted); a reward is
//! not finite (which sample); no reply within `task.timeout_s`. After any of
//! these the command is stopped and every later batch fails with the same
//! error (the line protocol is out of step).

use super::language_task::{BuildTask, LanguageTask, TaskConfig, Vocabulary, read_prompts_file};
use super::tokenizer::Tokenizer;
use anyhow::{Result, anyhow, bail};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of the command's stderr quoted in an error.
const STDERR_LINES: usize = 10;

/// Splits a command line into program and arguments like a POSIX shell
/// splits words: blanks separate, `'...'` is literal, `"..."` allows `\"`
/// and `\\`, a backslash outside quotes escapes the next character. No
/// variables, globs or pipes: for those, run `sh -c '...'`.
pub fn split_command(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => bail!("unbalanced ' in command {line:?}"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => bail!("unbalanced \" in command {line:?}"),
                        },
                        Some(c) => word.push(c),
                        None => bail!("unbalanced \" in command {line:?}"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => bail!("command {line:?} ends with a lone backslash"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        bail!("the reward command is empty");
    }
    Ok(words)
}

/// One sample sent to the command.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RewardRequest<'a> {
    /// The prompt's text.
    pub prompt: &'a str,
    /// The response's text (without the stop token).
    pub response: String,
    /// The prompt's index in the task.
    pub prompt_index: usize,
    /// Whether the response ended with the stop token.
    pub finished: bool,
}

/// The running process and the threads draining its output.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<std::io::Result<String>>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    /// Set once the protocol broke; every later call fails with it.
    failed: Option<String>,
}

/// A reward program spoken to in JSON lines (see the module docs).
pub struct RewardCommand {
    line: String,
    timeout: Duration,
    process: Mutex<Process>,
}

impl RewardCommand {
    /// Starts `line` (split by [`split_command`]); replies are awaited at
    /// most `timeout` per batch.
    pub fn spawn(line: &str, timeout: Duration) -> Result<Self> {
        let argv = split_command(line)?;
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow!(
                    "cannot start the reward command `{line}` ({}): {e}",
                    argv[0]
                )
            })?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        // Lines are read on their own thread so a batch can be awaited with
        // a timeout and a silent command never blocks the trainer forever.
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let stop = l.is_err();
                if tx.send(l).is_err() || stop {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                let mut t = tail.lock().expect("stderr tail");
                if t.len() == STDERR_LINES {
                    t.pop_front();
                }
                t.push_back(l);
            }
        });
        Ok(Self {
            line: line.to_string(),
            timeout,
            process: Mutex::new(Process {
                child,
                stdin,
                stdout: rx,
                stderr,
                stderr_thread: Some(stderr_thread),
                failed: None,
            }),
        })
    }

    /// The command line, as configured.
    pub fn command_line(&self) -> &str {
        &self.line
    }

    /// The rewards of `batch`, in order (see the module docs for the
    /// protocol and the errors).
    pub fn score(&self, batch: &[RewardRequest<'_>]) -> Result<Vec<f64>> {
        let mut p = self
            .process
            .lock()
            .map_err(|_| anyhow!("reward command lock poisoned"))?;
        if let Some(f) = &p.failed {
            bail!("{f}");
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut text = String::new();
        for r in batch {
            text += &serde_json::to_string(r)?;
            text.push('\n');
        }
        let result = self.exchange(&mut p, text.as_bytes(), batch);
        if let Err(e) = &result {
            let msg = format!("{e:#}");
            let _ = p.child.kill();
            let _ = p.child.wait();
            p.failed = Some(msg);
        }
        result
    }

    /// Writes the batch on a scoped thread (a command that does not read
    /// must not block us past the timeout) while reading the replies.
    fn exchange(
        &self,
        p: &mut Process,
        text: &[u8],
        batch: &[RewardRequest<'_>],
    ) -> Result<Vec<f64>> {
        let n = batch.len();
        let deadline = Instant::now() + self.timeout;
        let Process {
            child,
            stdin,
            stdout,
            ..
        } = p;
        let Some(pipe) = stdin.as_mut() else {
            bail!("the reward command `{}` has no stdin", self.line);
        };
        let mut rewards = Vec::with_capacity(n);
        let outcome: std::result::Result<(), Failure> = std::thread::scope(|s| {
            let writer = s.spawn(move || pipe.write_all(text).and_then(|()| pipe.flush()));
            let mut outcome = Ok(());
            for i in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                match stdout.recv_timeout(left) {
                    Ok(Ok(line)) => match parse_reward(&line) {
                        Ok(r) if r.is_finite() => rewards.push(r),
                        Ok(r) => {
                            outcome = Err(Failure::NonFinite(i, r));
                            break;
                        }
                        Err(()) => {
                            outcome = Err(Failure::Malformed(i, line));
                            break;
                        }
                    },
                    Ok(Err(e)) => {
                        outcome = Err(Failure::Read(i, e.to_string()));
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        outcome = Err(Failure::Exited(i));
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        outcome = Err(Failure::Timeout(i));
                        break;
                    }
                }
            }
            if outcome.is_err() && !writer.is_finished() {
                // Unblocks a writer stuck on a full pipe.
                let _ = child.kill();
            }
            let written = writer.join().expect("the writer thread does not panic");
            if outcome.is_ok()
                && let Err(e) = written
            {
                outcome = Err(Failure::Read(n, format!("writing the batch: {e}")));
            }
            outcome
        });
        let cmd = &self.line;
        match outcome {
            Ok(()) => Ok(rewards),
            Err(Failure::NonFinite(i, r)) => {
                let s = &batch[i];
                bail!(
                    "the reward command `{cmd}` returned a non-finite reward ({r}) for sample {i} \
                     of the batch (prompt {} {:?}, response {:?}); rewards must be finite",
                    s.prompt_index,
                    s.prompt,
                    s.response
                )
            }
            Err(Failure::Malformed(i, line)) => bail!(
                "the reward command `{cmd}` wrote {line:?} for sample {i} of the batch; expected \
                 one line per sample: {{\"reward\": <number>}} or a bare number"
            ),
            Err(Failure::Timeout(i)) => bail!(
                "the reward command `{cmd}` sent no reward for sample {i} of {n} within {:.1} s \
                 (task.timeout_s); it must answer one line per sample and flush stdout{}",
                self.timeout.as_secs_f64(),
                self.stderr_tail(p)
            ),
            Err(Failure::Exited(i)) => {
                let status = wait_briefly(&mut p.child);
                bail!(
                    "the reward command `{cmd}` {} after {i} of {n} rewards of the batch{}",
                    status,
                    self.stderr_tail(p)
                )
            }
            Err(Failure::Read(i, e)) => bail!(
                "the reward command `{cmd}`: cannot read the reward of sample {i}: {e}{}",
                self.stderr_tail(p)
            ),
        }
    }

    /// The last stderr lines, after letting the reader thread finish when
    /// the process has ended (bounded, since a grandchild may keep the pipe).
    fn stderr_tail(&self, p: &mut Process) -> String {
        if let Some(h) = p.stderr_thread.take() {
            let until = Instant::now() + Duration::from_millis(500);
            while !h.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                p.stderr_thread = Some(h);
            }
        }
        let tail = p.stderr.lock().map(|t| t.clone()).unwrap_or_default();
        if tail.is_empty() {
            "; it wrote nothing on stderr".into()
        } else {
            format!(
                "; its last stderr lines:\n  {}",
                tail.into_iter().collect::<Vec<_>>().join("\n  ")
            )
        }
    }
}

/// Why a batch failed (turned into a message with the batch at hand).
enum Failure {
    NonFinite(usize, f64),
    Malformed(usize, String),
    Timeout(usize),
    Exited(usize),
    Read(usize, String),
}

/// "exited with exit status: 3" once the process is gone (waiting at most
/// a second), else "closed its stdout".
fn wait_briefly(child: &mut Child) -> String {
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return format!("exited ({status})"),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return "closed its stdout".into(),
        }
    }
}

/// `{"reward": x}` or a bare number. Python's `json.dumps` writes `NaN`
/// and `Infinity`, which JSON does not allow, so those are read too (and
/// then refused as non-finite with the sample named, not as a bad line).
fn parse_reward(line: &str) -> std::result::Result<f64, ()> {
    let t = line.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(t) {
        return match v {
            serde_json::Value::Number(n) => n.as_f64().ok_or(()),
            serde_json::Value::Object(m) if m.len() == 1 => {
                m.get("reward").and_then(|r| r.as_f64()).ok_or(())
            }
            _ => Err(()),
        };
    }
    let body = t
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .and_then(|b| b.trim().strip_prefix("\"reward\""))
        .and_then(|b| b.trim().strip_prefix(':'))
        .unwrap_or(t)
        .trim();
    match body {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => Err(()),
    }
}

impl Drop for RewardCommand {
    /// Closes stdin (a well-behaved command exits at end of input), waits a
    /// moment, then kills it: no orphan survives the trainer.
    fn drop(&mut self) {
        if let Ok(p) = self.process.get_mut() {
            p.stdin.take();
            let until = Instant::now() + Duration::from_millis(500);
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) => return,
                    Ok(None) if Instant::now() < until => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => break,
                }
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// `[task] name = "command"`: prompts from a file or from a built-in task,
/// rewards from a [`RewardCommand`].
pub struct CommandTask {
    /// The wrapped built-in task (`task.prompts_from`): prompts, tokenizer,
    /// answer length, corpus and the notion of a right answer.
    base: Option<Box<dyn LanguageTask>>,
    vocab: Vocabulary,
    prompts: Vec<Vec<u32>>,
    texts: Vec<String>,
    exact: bool,
    command: RewardCommand,
}

impl CommandTask {
    /// The task of `[task]` (see [`TaskConfig`]). With `prompts_file` and
    /// no `tokenizer`, the vocabulary is the characters of the file's
    /// prompts plus a stop token (responses are written in it).
    /// `build_base` builds the task `prompts_from` names (the registry,
    /// [`super::task::build_task`]).
    pub fn from_config(
        cfg: &TaskConfig,
        tokenizer: Option<&Tokenizer>,
        seed: u64,
        build_base: &BuildTask,
    ) -> Result<Self> {
        let line = cfg
            .reward_command
            .as_deref()
            .ok_or_else(|| anyhow!("task `command` needs task.reward_command"))?;
        let timeout = Duration::from_secs_f64(cfg.timeout_s.unwrap_or(60.0));
        let (base, tok, prompts, texts, max_len) = if let Some(b) = &cfg.prompts_from {
            let base_cfg = TaskConfig {
                name: b.clone(),
                reward_command: None,
                prompts_file: None,
                prompts_from: None,
                timeout_s: None,
                exact: None,
                ..cfg.clone()
            };
            let base = build_base(&base_cfg, tokenizer, seed)?;
            let tok = base.tokenizer().clone();
            let prompts = base.prompts().to_vec();
            let texts = prompts
                .iter()
                .map(|p| tok.decode(p).map_err(anyhow::Error::from))
                .collect::<Result<Vec<_>>>()?;
            let max_len = base.max_len();
            (Some(base), tok, prompts, texts, max_len)
        } else {
            let path = std::path::PathBuf::from(cfg.prompts_file.as_deref().expect("validated"));
            let tok = match tokenizer {
                Some(t) => t.clone(),
                None => {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        anyhow!("cannot read task.prompts_file {}: {e}", path.display())
                    })?;
                    let mut chars: Vec<char> =
                        text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
                    chars.sort_unstable();
                    chars.dedup();
                    Tokenizer::chars(&chars.into_iter().collect::<String>(), true)?
                }
            };
            let mut lines = read_prompts_file(&path, &tok)?;
            if let Some(n) = cfg.prompts {
                if n == 0 || n > lines.len() {
                    bail!(
                        "task.prompts = {n}, but {} holds {} prompts",
                        path.display(),
                        lines.len()
                    );
                }
                lines.truncate(n);
            }
            let (texts, prompts) = lines.into_iter().unzip();
            (None, tok, prompts, texts, cfg.max_len.unwrap_or(16))
        };
        if max_len == 0 {
            bail!("task.max_len must be at least 1");
        }
        let Some(stop) = tok.eos_id() else {
            bail!("the command task needs a tokenizer with an end-of-sequence token");
        };
        let exact = cfg.exact.unwrap_or(false);
        let command = RewardCommand::spawn(line, timeout)?;
        Ok(Self {
            base,
            vocab: Vocabulary {
                tokenizer: tok,
                stop,
                max_len,
            },
            prompts,
            texts,
            exact,
            command,
        })
    }
}

impl LanguageTask for CommandTask {
    fn describe(&self) -> String {
        format!(
            "command task `{}` ({} prompts{}, answers <= {})",
            self.command.command_line(),
            self.prompts.len(),
            self.base
                .as_ref()
                .map(|b| format!(" of the {}", b.describe()))
                .unwrap_or_default(),
            self.vocab.max_len
        )
    }

    fn prompts(&self) -> &[Vec<u32>] {
        &self.prompts
    }

    fn rewards(&self, batch: &[(usize, &[u32])]) -> Result<Vec<f64>> {
        let requests = batch
            .iter()
            .map(|&(p, y)| {
                let (body, finished) = match y.split_last() {
                    Some((&last, body)) if last == self.vocab.stop => (body, true),
                    _ => (y, false),
                };
                Ok(RewardRequest {
                    prompt: &self.texts[p],
                    response: self.vocab.tokenizer.decode(body)?,
                    prompt_index: p,
                    finished,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.command.score(&requests)
    }

    fn correct(&self, prompt: usize, response: &[u32]) -> Option<bool> {
        self.base.as_ref()?.correct(prompt, response)
    }

    fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    fn corpus(&self, n: usize, rng: &mut ChaCha8Rng) -> Option<Vec<(Vec<u32>, Vec<u32>)>> {
        self.base.as_ref()?.corpus(n, rng)
    }

    /// Only when asked (`task.exact = true`): listing every answer calls
    /// the command for each of them.
    fn enumerable(&self) -> bool {
        self.exact && self.base.as_ref().is_none_or(|b| b.enumerable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_command_like_a_shell() {
        assert_eq!(
            split_command(r#"python3  -c 'print(1)' "a \"b\"" c\ d"#).unwrap(),
            vec!["python3", "-c", "print(1)", "a \"b\"", "c d"]
        );
        assert!(split_command("python3 'oops").is_err());
        assert!(split_command("   ").is_err());
    }

    #[test]
    fn reward_lines() {
        assert_eq!(parse_reward("{\"reward\": 1.5}"), Ok(1.5));
        assert_eq!(parse_reward(" -2 "), Ok(-2.0));
        assert!(parse_reward("{\"reward\": NaN}").unwrap().is_nan());
        assert_eq!(parse_reward("Infinity"), Ok(f64::INFINITY));
        assert_eq!(parse_reward("{\"score\": 1}"), Err(()));
        assert_eq!(parse_reward("{\"reward\": \"1\"}"), Err(()));
        assert_eq!(parse_reward("hello"), Err(()));
    }
}
