//! The `ps` options `hull top` takes after the container, as Docker passes
//! them to `ps`: which columns to show and how `ps` writes each one.
//!
//! Docker runs the host's `ps` and keeps the container's rows. A container
//! here has a kernel of its own, so its agent reports the processes and
//! this module lays them out as procps would for the options given:
//! `-ef` (Docker's default), `aux` and their like, `-o FIELD[=TITLE],...`.
//! Selection options (`-e`, `-A`, `a`, `x`) change nothing: every process
//! of the container is shown, as Docker shows them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Result};
use hull_runtime::ProcessInfo;

/// A column `ps` can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Pid,
    Ppid,
    Uid,
    /// The user's name (`ps -f` titles it UID), else the number.
    User,
    Cpu,
    CpuPercent,
    MemPercent,
    Vsz,
    Rss,
    Tty,
    Stat,
    State,
    /// When it started, as `-f`'s STIME: `HH:MM` today, `MonDD` this
    /// year, the year before.
    Stime,
    /// When it started, as BSD `u`'s START: `HH:MM` in the last day,
    /// `Mon D` in the last year, the year before.
    Start,
    /// CPU time as `[DD-]HH:MM:SS`.
    Time,
    /// CPU time as BSD's `MMM:SS`.
    BsdTime,
    Elapsed,
    ElapsedSeconds,
    Comm,
    Args,
}

/// A column and its title.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    field: Field,
    title: String,
}

impl Column {
    fn new(field: Field, title: &str) -> Column {
        Column {
            field,
            title: title.to_owned(),
        }
    }
}

/// The columns `ps` shows for `options`.
#[derive(Debug, PartialEq, Eq)]
pub struct PsFormat {
    columns: Vec<Column>,
}

impl PsFormat {
    /// Reads `ps` options as procps does: words with a dash are UNIX
    /// options, words without are BSD ones; `-o`/`o`/`--format` take a
    /// list of fields. No options means Docker's `-ef`.
    pub fn parse(options: &[String]) -> Result<PsFormat> {
        let mut full = false;
        let mut bsd_user = false;
        let mut bsd = false;
        let mut listed: Vec<Column> = Vec::new();
        let mut words = options.iter();
        while let Some(word) = words.next() {
            if let Some(list) = word.strip_prefix("--format") {
                let list = match list.strip_prefix('=') {
                    Some(list) => list.to_owned(),
                    None if list.is_empty() => list_argument(word, words.next())?,
                    None => bail!("{}", unsupported(word)),
                };
                listed.extend(parse_list(&list)?);
                continue;
            }
            let (letters, unix) = match word.strip_prefix('-') {
                Some(letters) => (letters, true),
                None => (word.as_str(), false),
            };
            if letters.is_empty() {
                bail!("{}", unsupported(word));
            }
            for (at, letter) in letters.char_indices() {
                match letter {
                    'o' => {
                        let rest = &letters[at + 1..];
                        let list = match rest.is_empty() {
                            true => list_argument(word, words.next())?,
                            false => rest.to_owned(),
                        };
                        listed.extend(parse_list(&list)?);
                        break;
                    }
                    // Selections: every process of the container is shown.
                    'e' | 'A' | 'a' | 'd' if unix => {}
                    'a' | 'x' if !unix => {}
                    // Wide output: a cell is never cut here.
                    'w' => {}
                    'f' if unix => full = true,
                    'u' if !unix => bsd_user = true,
                    _ => bail!("{}", unsupported(word)),
                }
            }
            bsd |= !unix;
        }
        let columns = match (listed.is_empty(), bsd_user, bsd, full) {
            (false, ..) => listed,
            (true, true, ..) => bsd_user_columns(),
            (true, false, true, _) => vec![
                Column::new(Field::Pid, "PID"),
                Column::new(Field::Tty, "TTY"),
                Column::new(Field::Stat, "STAT"),
                Column::new(Field::BsdTime, "TIME"),
                Column::new(Field::Args, "COMMAND"),
            ],
            (true, false, false, true) => full_columns(),
            (true, false, false, false) if options.is_empty() => full_columns(),
            (true, false, false, false) => vec![
                Column::new(Field::Pid, "PID"),
                Column::new(Field::Tty, "TTY"),
                Column::new(Field::Time, "TIME"),
                Column::new(Field::Comm, "CMD"),
            ],
        };
        Ok(PsFormat { columns })
    }

    /// The column titles.
    pub fn titles(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.title.clone()).collect()
    }

    /// `process`'s cells, with times as seen `now`.
    pub fn cells(&self, process: &ProcessInfo, now: SystemTime) -> Vec<String> {
        self.columns
            .iter()
            .map(|column| cell(column.field, process, now))
            .collect()
    }
}

impl Default for PsFormat {
    /// Docker's `ps -ef`.
    fn default() -> PsFormat {
        PsFormat {
            columns: full_columns(),
        }
    }
}

/// `ps -f`'s columns, Docker's default.
fn full_columns() -> Vec<Column> {
    vec![
        Column::new(Field::User, "UID"),
        Column::new(Field::Pid, "PID"),
        Column::new(Field::Ppid, "PPID"),
        Column::new(Field::Cpu, "C"),
        Column::new(Field::Stime, "STIME"),
        Column::new(Field::Tty, "TTY"),
        Column::new(Field::Time, "TIME"),
        Column::new(Field::Args, "CMD"),
    ]
}

/// BSD `u`'s columns (`ps aux`).
fn bsd_user_columns() -> Vec<Column> {
    vec![
        Column::new(Field::User, "USER"),
        Column::new(Field::Pid, "PID"),
        Column::new(Field::CpuPercent, "%CPU"),
        Column::new(Field::MemPercent, "%MEM"),
        Column::new(Field::Vsz, "VSZ"),
        Column::new(Field::Rss, "RSS"),
        Column::new(Field::Tty, "TTY"),
        Column::new(Field::Stat, "STAT"),
        Column::new(Field::Start, "START"),
        Column::new(Field::BsdTime, "TIME"),
        Column::new(Field::Args, "COMMAND"),
    ]
}

fn list_argument(option: &str, value: Option<&String>) -> Result<String> {
    match value {
        Some(value) => Ok(value.clone()),
        None => bail!("ps option {option} needs a list of fields, such as -o pid,user,args"),
    }
}

fn unsupported(option: &str) -> String {
    format!(
        "ps option {option:?} is not supported: hull top reads the container's processes in its \
         VM and lays them out as -ef (the default), -e, aux, ax or -o FIELD,... would"
    )
}

/// A `-o` list: fields separated by commas or spaces, each with an optional
/// `=TITLE`. As in procps, a title runs to the end of its list.
fn parse_list(list: &str) -> Result<Vec<Column>> {
    let mut columns = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let end = rest.find([',', ' ', '=']).unwrap_or(rest.len());
        let name = &rest[..end];
        let Some((field, title)) = field_named(name) else {
            bail!(
                "unknown ps field {name:?}: hull top shows pid, ppid, uid, user, comm, args, \
                 stat, s, time, etime, etimes, %cpu, %mem, vsz, rss, tty, stime, start and c"
            );
        };
        let title = match rest[end..].strip_prefix('=') {
            Some(given) => {
                rest = "";
                given
            }
            None => {
                rest = rest[end..].trim_start_matches([',', ' ']);
                title
            }
        };
        columns.push(Column::new(field, title));
    }
    if columns.is_empty() {
        bail!("ps option -o needs a list of fields, such as -o pid,user,args");
    }
    Ok(columns)
}

/// The field procps calls `name`, with the title it gives it.
fn field_named(name: &str) -> Option<(Field, &'static str)> {
    Some(match name {
        "pid" | "tgid" => (Field::Pid, "PID"),
        "ppid" => (Field::Ppid, "PPID"),
        "uid" | "euid" => (Field::Uid, "UID"),
        "user" | "euser" | "uname" => (Field::User, "USER"),
        "c" => (Field::Cpu, "C"),
        "%cpu" | "pcpu" => (Field::CpuPercent, "%CPU"),
        "%mem" | "pmem" => (Field::MemPercent, "%MEM"),
        "vsz" | "vsize" => (Field::Vsz, "VSZ"),
        "rss" | "rssize" | "rsz" => (Field::Rss, "RSS"),
        "tty" | "tt" | "tname" => (Field::Tty, "TT"),
        "stat" => (Field::Stat, "STAT"),
        "s" | "state" => (Field::State, "S"),
        "stime" | "start_time" => (Field::Stime, "STIME"),
        "start" | "bsdstart" => (Field::Start, "START"),
        "time" | "cputime" => (Field::Time, "TIME"),
        "etime" => (Field::Elapsed, "ELAPSED"),
        "etimes" => (Field::ElapsedSeconds, "ELAPSED"),
        "comm" | "ucmd" | "ucomm" => (Field::Comm, "COMMAND"),
        "cmd" => (Field::Args, "CMD"),
        "args" | "command" => (Field::Args, "COMMAND"),
        _ => return None,
    })
}

fn cell(field: Field, process: &ProcessInfo, now: SystemTime) -> String {
    match field {
        Field::Pid => process.pid.to_string(),
        Field::Ppid => process.ppid.to_string(),
        Field::Uid => process.uid.to_string(),
        Field::User => match &process.user {
            Some(user) => user_column(user),
            None => process.uid.to_string(),
        },
        Field::Cpu => (cpu_percent_tenths(process) / 10).min(99).to_string(),
        Field::CpuPercent => tenths(cpu_percent_tenths(process)),
        Field::MemPercent => tenths(u64::from(process.memory_permille)),
        Field::Vsz => process.vsz_kib.to_string(),
        Field::Rss => process.rss_kib.to_string(),
        Field::Tty => process.tty.clone().unwrap_or_else(|| "?".into()),
        Field::Stat => process.state.clone(),
        Field::State => process.state.chars().take(1).collect(),
        Field::Stime => stime(started(process, now), now),
        Field::Start => start(started(process, now), now),
        Field::Time => cpu_time(process.cpu_time_ms / 1000),
        Field::BsdTime => {
            let seconds = process.cpu_time_ms / 1000;
            format!("{}:{:02}", seconds / 60, seconds % 60)
        }
        Field::Elapsed => elapsed(process.elapsed_ms / 1000),
        Field::ElapsedSeconds => (process.elapsed_ms / 1000).to_string(),
        Field::Comm => process.name.clone(),
        Field::Args => process.command.clone(),
    }
}

/// A user name in ps's 8 columns: a longer one cut to 7 and `+`.
fn user_column(user: &str) -> String {
    match user.chars().count() {
        0..=8 => user.to_owned(),
        _ => user.chars().take(7).chain(['+']).collect(),
    }
}

/// When `process` started, seen `now`.
fn started(process: &ProcessInfo, now: SystemTime) -> SystemTime {
    now.checked_sub(Duration::from_millis(process.elapsed_ms))
        .unwrap_or(UNIX_EPOCH)
}

/// CPU time over time alive, in tenths of a percent, as procps rounds it
/// (the guest's figures are not trusted to be sane).
fn cpu_percent_tenths(process: &ProcessInfo) -> u64 {
    process
        .cpu_time_ms
        .saturating_mul(1000)
        .checked_div(process.elapsed_ms)
        .unwrap_or(0)
}

fn tenths(value: u64) -> String {
    format!("{}.{}", value / 10, value % 10)
}

/// `ps`'s TIME: `[DD-]HH:MM:SS` of CPU time.
fn cpu_time(seconds: u64) -> String {
    let days = seconds / 86_400;
    let clock = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60
    );
    match days {
        0 => clock,
        days => format!("{days}-{clock}"),
    }
}

/// `ps`'s ELAPSED: `[[DD-]HH:]MM:SS`.
fn elapsed(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3600 % 24);
    let clock = format!("{:02}:{:02}", seconds / 60 % 60, seconds % 60);
    match (days, hours) {
        (0, 0) => clock,
        (0, hours) => format!("{hours:02}:{clock}"),
        (days, hours) => format!("{days}-{hours:02}:{clock}"),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// procps' STIME in local time: `HH:MM` on the day it is, `MonDD` on
/// another day of the year, the year before that.
fn stime(started: SystemTime, now: SystemTime) -> String {
    let (Some(local), Some(today)) = (local_time(started), local_time(now)) else {
        return "?".into();
    };
    if local.tm_year != today.tm_year {
        (local.tm_year + 1900).to_string()
    } else if local.tm_yday != today.tm_yday {
        format!("{}{:02}", month(&local), local.tm_mday)
    } else {
        format!("{:02}:{:02}", local.tm_hour, local.tm_min)
    }
}

/// procps' START in local time: `HH:MM` in the last day, `Mon D` (the day
/// padded to two) in the last year, the year before that.
fn start(started: SystemTime, now: SystemTime) -> String {
    let age = now.duration_since(started).unwrap_or_default();
    let Some(local) = local_time(started) else {
        return "?".into();
    };
    if age > Duration::from_secs(365 * 86_400) {
        (local.tm_year + 1900).to_string()
    } else if age > Duration::from_secs(86_400) {
        format!("{}{:>2}", month(&local), local.tm_mday)
    } else {
        format!("{:02}:{:02}", local.tm_hour, local.tm_min)
    }
}

fn month(time: &libc::tm) -> &'static str {
    MONTHS[time.tm_mon.clamp(0, 11) as usize]
}

/// `time` broken down in the local time zone, as `ps` shows it.
fn local_time(time: SystemTime) -> Option<libc::tm> {
    let seconds = time.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let seconds = libc::time_t::try_from(seconds).ok()?;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null zone
    // name), which localtime_r overwrites.
    let mut local: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals for the call; localtime_r
    // is the reentrant form, safe beside other threads.
    let result = unsafe { libc::localtime_r(&seconds, &mut local) };
    (!result.is_null()).then_some(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn titles(line: &str) -> String {
        PsFormat::parse(&words(line)).unwrap().titles().join(" ")
    }

    fn process() -> ProcessInfo {
        ProcessInfo {
            pid: 7,
            ppid: 1,
            uid: 70,
            user: Some("postgres".into()),
            state: "Ss".into(),
            cpu_time_ms: 3_723_000,
            elapsed_ms: 7_446_000,
            tty: None,
            vsz_kib: 171_024,
            rss_kib: 28_016,
            memory_permille: 55,
            name: "postgres".into(),
            command: "postgres -c fsync=on".into(),
        }
    }

    #[test]
    fn option_sets_choose_procps_columns() {
        assert_eq!(titles(""), PsFormat::default().titles().join(" "));
        assert_eq!(titles(""), "UID PID PPID C STIME TTY TIME CMD");
        assert_eq!(titles("-ef"), "UID PID PPID C STIME TTY TIME CMD");
        assert_eq!(titles("-e -f"), "UID PID PPID C STIME TTY TIME CMD");
        assert_eq!(titles("-e"), "PID TTY TIME CMD");
        assert_eq!(
            titles("aux"),
            "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND"
        );
        assert_eq!(titles("ax"), "PID TTY STAT TIME COMMAND");
        assert_eq!(titles("-eo pid,user,args"), "PID USER COMMAND");
        assert_eq!(titles("-o pid,comm"), "PID COMMAND");
        assert_eq!(titles("-opid -o stat"), "PID STAT");
        assert_eq!(titles("o pid,etime"), "PID ELAPSED");
        assert_eq!(titles("--format pid,s"), "PID S");
        assert_eq!(titles("--format=pid"), "PID");
        // A title runs to the end of its list.
        assert_eq!(titles("-o pid=ID -o comm=NAME,X"), "ID NAME,X");
        assert_eq!(titles("-o pid,tty="), "PID ");
    }

    #[test]
    fn unknown_options_and_fields_are_refused_by_name() {
        for line in [
            "-l", "-F", "-", "--sort", "-o", "-o pgid", "-o ,", "-u root",
        ] {
            let err = PsFormat::parse(&words(line)).unwrap_err().to_string();
            assert!(err.contains("ps "), "{line}: {err}");
        }
        let err = PsFormat::parse(&words("-o pgid")).unwrap_err().to_string();
        assert!(err.contains("\"pgid\""), "{err}");
    }

    #[test]
    fn cells_are_written_as_ps_writes_them() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let format = PsFormat::parse(&words(
            "-o pid,ppid,uid,user,c,%cpu,%mem,vsz,rss,tty,stat,s,time,etime,etimes,comm,args",
        ))
        .unwrap();
        assert_eq!(
            format.cells(&process(), now),
            [
                "7",
                "1",
                "70",
                "postgres",
                "50",
                "50.0",
                "5.5",
                "171024",
                "28016",
                "?",
                "Ss",
                "S",
                "01:02:03",
                "02:04:06",
                "7446",
                "postgres",
                "postgres -c fsync=on"
            ]
        );
        let bsd = PsFormat::parse(&words("aux")).unwrap();
        assert_eq!(bsd.cells(&process(), now)[9], "62:03");
        let hostile = ProcessInfo {
            cpu_time_ms: u64::MAX,
            ..process()
        };
        assert_eq!(format.cells(&hostile, now)[4], "99");
        let nameless = ProcessInfo {
            user: None,
            tty: Some("pts/0".into()),
            elapsed_ms: 0,
            ..process()
        };
        let full = PsFormat::default().cells(&nameless, now);
        assert_eq!(full[0], "70");
        assert_eq!(full[3], "0");
        assert_eq!(full[5], "pts/0");
    }

    #[test]
    fn times_read_like_ps() {
        assert_eq!(cpu_time(0), "00:00:00");
        assert_eq!(cpu_time(3_723), "01:02:03");
        assert_eq!(cpu_time(90_061), "1-01:01:01");
        assert_eq!(elapsed(61), "01:01");
        assert_eq!(elapsed(3_723), "01:02:03");
        assert_eq!(elapsed(90_061), "1-01:01:01");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let today = local_time(now).unwrap();
        let clock = format!("{:02}:{:02}", today.tm_hour, today.tm_min);
        assert_eq!(stime(now, now), clock);
        assert_eq!(start(now, now), clock);
        let last_month = now - Duration::from_secs(30 * 86_400);
        let then = local_time(last_month).unwrap();
        if then.tm_year == today.tm_year {
            assert_eq!(
                stime(last_month, now),
                format!("{}{:02}", month(&then), then.tm_mday)
            );
        }
        assert_eq!(
            start(last_month, now),
            format!("{}{:>2}", month(&then), then.tm_mday)
        );
        let long_ago = now - Duration::from_secs(400 * 86_400);
        assert!(stime(long_ago, now).starts_with("20"));
        assert!(start(long_ago, now).starts_with("20"));
        assert_eq!(user_column("postgres"), "postgres");
        assert_eq!(user_column("systemd-network"), "systemd+");
    }
}
