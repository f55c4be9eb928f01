//! Docker's `--format` for list and inspect commands.
//!
//! List commands (`ps`, `images`, `network ls`, `stats`, ...) take a
//! [`Format`] and hand their rows to [`render_rows`]; single-object commands
//! (`inspect`, `network inspect`, `version`, `info`) hand one object at a
//! time to [`render_one`]. Rows and objects are JSON objects whose keys are
//! Docker's field names (`ID`, `Names`, `State.Status`, ...), and templates
//! are Go templates, rendered by the `gotmpl` crate with Docker's template
//! functions: `json`, `split`, `join`, `title`, `lower`, `upper`, `pad` and
//! `truncate`, besides Go's built-ins (`index`, `len`, `printf`, `println`,
//! `eq`, ...).
//!
//! The data is JSON rather than Docker's Go structs, which shows in a few
//! places:
//! - A field a list row does not have is an error, as Docker's for an
//!   unknown struct field; but in an inspected object (and below a row's
//!   fields) a field that does not exist renders as `<no value>`, as a
//!   missing map key does in Go. JSON `null` renders as `<no value>` too,
//!   but for the fields
//!   [`render_one`] is told are Go pointers, which render as `<nil>` where
//!   printed as fields of the object (`{{.State.Health}}`), null or
//!   missing, as in Docker.
//! - Object keys come out sorted, in `{{json .}}` as in `{{range}}`: that is
//!   Docker's order for list rows (which Docker encodes as maps) but not for
//!   inspect objects, whose `{{json .State}}` Docker writes in struct order.
//! - An array prints as `[a b]` and an object as `map[k:v]`, as Go prints
//!   slices and maps; Docker prints a struct field by field instead.
//! - A call of an undefined function fails when the template runs on a row,
//!   not when it is parsed.

#![deny(missing_docs)]
mod go_methods;
mod nil_pointer;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use gotmpl::{MissingKey, Template, TemplateError, Value};
use tabwriter::TabWriter;

/// The `--format` of a list command, as Docker reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `""` or `table`: the command's own table, [`Listing::default_format`].
    #[default]
    Default,
    /// `json`: each row as one line of compact JSON, as `{{json .}}` writes it.
    Json,
    /// A Go template, rendered once per row with a newline after each.
    Template {
        /// Given as `table TEMPLATE`: a header row comes first, and the
        /// columns (cells ended by tabs) are aligned.
        table: bool,
        /// The template, with `\t` and `\n` typed as two characters already
        /// turned into a tab and a newline, and outer spaces removed.
        template: String,
    },
}

impl FromStr for Format {
    type Err = anyhow::Error;

    /// Reads a `--format` value; a template that does not parse is an error
    /// (`template parsing error: ...`), as in Docker.
    fn from_str(value: &str) -> Result<Self> {
        match value.trim_matches(' ') {
            "" | "table" => Ok(Format::Default),
            "json" => Ok(Format::Json),
            _ => {
                let (table, template) = split_table(value);
                parse(&template, Functions::Row)?;
                Ok(Format::Template {
                    table,
                    template: template.into_owned(),
                })
            }
        }
    }
}

/// Checks a single-object command's `--format` (`inspect -f`) before any
/// object is looked up: a template that does not parse is an error
/// (`template parsing error: ...`), as in Docker.
pub fn check_template(template: &str) -> Result<()> {
    parse(template, Functions::Row).map(drop)
}

/// What a list command shows by default, and how its columns are titled.
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    /// The format used for [`Format::Default`], as a user would type it
    /// (Docker's default for `ps` is
    /// `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}`).
    pub default_format: &'a str,
    /// Column titles by field name, such as `("ID", "CONTAINER ID")`. A
    /// field of the rows that is not listed is titled with its name in upper
    /// case.
    pub headers: &'a [(&'a str, &'a str)],
}

/// Labels as a row of Docker's list commands holds them (`{{.Labels}}`):
/// `KEY=VALUE` pairs, by key, joined with commas.
pub fn labels_field<'a>(labels: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let pairs: Vec<String> = labels
        .into_iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.join(",")
}

/// Writes `rows` to `out` in `format`, as Docker's list commands do.
///
/// A template is rendered once per row, each rendering followed by a
/// newline. A `table` template is preceded by a header row, which is the
/// template rendered over the column titles of `listing` (Docker's
/// functions other than `pad` pass the titles through unchanged), and its
/// tab-separated cells are aligned in columns as Docker's tabwriter aligns
/// them: at least 10 wide, and 3 spaces wider than their widest cell. The
/// header is written even when there are no rows.
///
/// # Errors
///
/// A template that does not parse or fails on a row (`template parsing
/// error: ...`), in which case nothing is written; or a failure to write.
pub fn render_rows(
    format: &Format,
    listing: &Listing,
    rows: &[serde_json::Value],
    out: &mut impl Write,
) -> Result<()> {
    let (table, template) = match format {
        Format::Default => split_table(listing.default_format),
        Format::Json => (false, Cow::Borrowed("{{json .}}")),
        Format::Template { table, template } => (*table, Cow::Borrowed(template.as_str())),
    };
    // A row is one of Docker's structs: a field it does not have is an
    // error, not `<no value>`.
    let row_template = parse(&template, Functions::Row)?.missing_key(MissingKey::Error);
    let mut body = Vec::new();
    for row in rows {
        row_template
            .execute(&mut body, &to_template(row))
            .map_err(|error| row_error(error, row))?;
        body.push(b'\n');
    }
    if !table {
        out.write_all(&body)?;
        return Ok(());
    }
    let mut titles: BTreeMap<Arc<str>, Value> = rows
        .iter()
        .filter_map(serde_json::Value::as_object)
        .flat_map(|row| row.keys())
        .map(|field| {
            (
                field.as_str().into(),
                Value::String(field.to_uppercase().into()),
            )
        })
        .collect();
    titles.extend(
        listing
            .headers
            .iter()
            .map(|&(field, title)| (field.into(), Value::String(title.into()))),
    );
    let mut header = Vec::new();
    // As in Docker, a header that fails part way keeps what it rendered:
    // `{{.State.Status}}` fails there, as the title of `State` is a string.
    let _ = parse(&template, Functions::Header)?.execute(&mut header, &Value::Map(titles.into()));
    // Docker's tabwriter.NewWriter(out, 10, 1, 3, ' ', 0): a column is as
    // wide as max(10, widest cell + 3), which is this writer's
    // max(7, widest cell) + 3.
    let mut columns = TabWriter::new(out).minwidth(7).padding(3);
    columns.write_all(&header)?;
    columns.write_all(b"\n")?;
    columns.write_all(&body)?;
    columns.flush()?;
    Ok(())
}

/// Writes `lines` of cells aligned in columns, as Go's
/// `tabwriter.NewWriter(out, min_width, 1, 3, ' ', 0)` aligns them (`docker
/// top` uses 20): a column is as wide as `min_width` or its widest cell
/// and 3 spaces, whichever is wider; the last cell of a line is not padded.
///
/// # Errors
///
/// A failure to write.
pub fn render_columns(lines: &[Vec<String>], min_width: usize, out: &mut impl Write) -> Result<()> {
    const PADDING: usize = 3;
    let mut columns = TabWriter::new(out)
        .minwidth(min_width.saturating_sub(PADDING))
        .padding(PADDING);
    for line in lines {
        columns.write_all(line.join("\t").as_bytes())?;
        columns.write_all(b"\n")?;
    }
    columns.flush()?;
    Ok(())
}

/// Renders `template` over one object, as `docker inspect --format` does
/// for each object it inspects (and `version` and `info` for theirs); the
/// caller writes a newline after the result.
///
/// As in Docker's inspect, the template is used as given: `\t` typed as two
/// characters stays so. `json` and the empty format are the caller's to
/// handle, as Docker gives them meanings of their own for each command.
///
/// `nil_pointers` are the dotted paths (`State.Health`) of the fields that
/// Docker's structs hold as pointers: when null or missing from their
/// object, `{{.State.Health}}` prints `<nil>`, as Go prints a nil pointer,
/// not `<no value>`.
///
/// # Errors
///
/// A template that does not parse or fails on `value` (`template parsing
/// error: ...`).
pub fn render_one(
    template: &str,
    value: &serde_json::Value,
    nil_pointers: &[&str],
) -> Result<String> {
    let parsed = parse(template, Functions::Row)?;
    let data = to_template(value);
    match nil_pointers.is_empty() {
        true => parsed.execute_to_string(&data),
        false => nil_pointer::render(parsed, template, value, &data, nil_pointers),
    }
    .map_err(template_error)
}

/// Splits Docker's `table` prefix off a list format and reads the template
/// as Docker does: outer spaces removed, `\t` and `\n` turned into a tab and
/// a newline.
fn split_table(format: &str) -> (bool, Cow<'_, str>) {
    let (table, template) = match format.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, format),
    };
    let template = template.trim_matches(' ');
    if !template.contains('\\') {
        return (table, Cow::Borrowed(template));
    }
    let mut unescaped = String::with_capacity(template.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        let escape = match chars.clone().next() {
            Some('t') if c == '\\' => '\t',
            Some('n') if c == '\\' => '\n',
            _ => {
                unescaped.push(c);
                continue;
            }
        };
        unescaped.push(escape);
        chars.next();
    }
    (table, Cow::Owned(unescaped))
}

/// The functions a template is parsed with.
#[derive(Clone, Copy, PartialEq)]
enum Functions {
    /// Docker's template functions.
    Row,
    /// The same names for a table's header, where all but `pad` return their
    /// first argument, a column title, unchanged (Docker's
    /// `HeaderFunctions`).
    Header,
}

type Function = fn(&[Value]) -> gotmpl::Result<Value>;

/// Docker's template functions (`templates.basicFunctions`).
const FUNCTIONS: [(&str, Function); 10] = [
    ("index", go_methods::index),
    (go_methods::LABEL_FUNCTION, go_methods::label),
    ("json", json),
    ("split", split),
    ("join", join),
    ("title", title),
    ("lower", lower),
    ("upper", upper),
    ("pad", pad),
    ("truncate", truncate),
];

fn parse(template: &str, functions: Functions) -> Result<Template> {
    let parsed = FUNCTIONS
        .iter()
        .fold(Template::new(""), |parsed, &(name, function)| {
            match (functions, name) {
                (Functions::Row, _) | (Functions::Header, "pad") => parsed.func(name, function),
                (Functions::Header, go_methods::LABEL_FUNCTION) => parsed.func(name, label_header),
                (Functions::Header, _) => parsed.func(name, first_argument),
            }
        })
        .parse(&go_methods::rewrite_label_calls(template))
        .map_err(template_error)?;
    check_blocks(template)?;
    Ok(parsed)
}

/// Checks that each `{{if}}`, `{{range}}`, `{{with}}`, `{{define}}` and
/// `{{block}}` has its `{{end}}`, and that each `{{else}}` and `{{end}}` has
/// a block, as Go does: gotmpl 0.6 takes the end of the template as the end
/// of open blocks, and a stray `{{end}}` as the end of the template.
///
/// The template is one that gotmpl lexed, so its actions are well formed.
fn check_blocks(template: &str) -> Result<()> {
    let mut open = 0usize;
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let action = &rest[start + 2..];
        let action = match action.strip_prefix('-') {
            Some(trimmed) if trimmed.starts_with(char::is_whitespace) => trimmed,
            _ => action,
        }
        .trim_start();
        let word_end = action
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(action.len());
        match &action[..word_end] {
            "if" | "range" | "with" | "define" | "block" => open += 1,
            "end" if open > 0 => open -= 1,
            word @ ("end" | "else") if open == 0 => {
                return Err(anyhow!("template parsing error: unexpected {{{{{word}}}}}"));
            }
            _ => {}
        }
        rest = &action[action_end(action)..];
    }
    if open > 0 {
        return Err(anyhow!("template parsing error: unexpected EOF"));
    }
    Ok(())
}

/// Where the action that `action` starts ends, after its `}}`: quoted
/// strings, characters and comments may hold a `}}` of their own.
fn action_end(action: &str) -> usize {
    if let Some(comment) = action.strip_prefix("/*") {
        return comment.find("*/").map_or(action.len(), |end| {
            let after = 2 + end + 2;
            action[after..]
                .find("}}")
                .map_or(action.len(), |close| after + close + 2)
        });
    }
    let mut chars = action.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let escapes = c != '`';
                while let Some((_, inner)) = chars.next() {
                    if escapes && inner == '\\' {
                        chars.next();
                    } else if inner == c {
                        break;
                    }
                }
            }
            '}' if action[i + 1..].starts_with('}') => return i + 2,
            _ => {}
        }
    }
    action.len()
}

/// Docker's wording for a template that does not parse or run.
/// A row template's failure on `row`: a field the row does not have is
/// named with those it has, as Docker names the field it cannot evaluate.
fn row_error(error: TemplateError, row: &serde_json::Value) -> anyhow::Error {
    let TemplateError::MissingKey { key } = &error else {
        return template_error(error);
    };
    let fields: Vec<&str> = row
        .as_object()
        .map(|object| object.keys().map(String::as_str).collect())
        .unwrap_or_default();
    anyhow!(
        "template: can't evaluate field {key}: a row's fields are {}",
        fields.join(", ")
    )
}

fn template_error(error: TemplateError) -> anyhow::Error {
    anyhow!("template parsing error: {error}")
}

fn to_template(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_u64().map(Value::Uint))
            .or_else(|| n.as_f64().map(Value::Float))
            .unwrap_or(Value::Nil),
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(items) => Value::List(items.iter().map(to_template).collect()),
        serde_json::Value::Object(fields) => Value::Map(Arc::new(
            fields
                .iter()
                .map(|(key, value)| (key.as_str().into(), to_template(value)))
                .collect(),
        )),
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        // Go writes a whole float64 without a fraction: 3, not 3.0.
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (*f as i64).into(),
        Value::Float(f) => (*f).into(),
        Value::String(s) => s.as_ref().into(),
        Value::List(items) => items.iter().map(to_json).collect(),
        Value::Map(fields) => fields
            .iter()
            .map(|(key, value)| (key.to_string(), to_json(value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

fn wrong_arguments(name: &str, arguments: &[Value], expected: usize) -> TemplateError {
    TemplateError::ArgCount {
        name: name.to_owned(),
        expected,
        got: arguments.len(),
    }
}

fn string(value: &Value) -> gotmpl::Result<&str> {
    value.as_str().ok_or(TemplateError::TypeMismatch {
        expected: "string",
        got: value.type_name(),
    })
}

fn integer(value: &Value) -> gotmpl::Result<i64> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => {
            i64::try_from(*u).map_err(|_| TemplateError::Exec(format!("{u} is too large")))
        }
        _ => Err(TemplateError::TypeMismatch {
            expected: "int",
            got: value.type_name(),
        }),
    }
}

/// Applies a `str -> String` function to a template's single argument.
fn map_string(
    name: &str,
    arguments: &[Value],
    function: impl Fn(&str) -> String,
) -> gotmpl::Result<Value> {
    let [value] = arguments else {
        return Err(wrong_arguments(name, arguments, 1));
    };
    Ok(Value::String(function(string(value)?).into()))
}

/// `json VALUE`: compact JSON, HTML characters unescaped.
fn json(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [value] = arguments else {
        return Err(wrong_arguments("json", arguments, 1));
    };
    Ok(Value::String(to_json(value).to_string().into()))
}

/// `split STRING SEPARATOR`: Go's `strings.Split`.
fn split(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [text, separator] = arguments else {
        return Err(wrong_arguments("split", arguments, 2));
    };
    let (text, separator) = (string(text)?, string(separator)?);
    let parts: Vec<Value> = if separator.is_empty() {
        text.chars()
            .map(|c| Value::String(c.to_string().into()))
            .collect()
    } else {
        text.split(separator)
            .map(|part| Value::String(part.into()))
            .collect()
    };
    Ok(Value::List(parts.into()))
}

/// `join LIST SEPARATOR`: Go's `strings.Join`, over a list of strings.
fn join(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [list, separator] = arguments else {
        return Err(wrong_arguments("join", arguments, 2));
    };
    let Value::List(items) = list else {
        return Err(TemplateError::TypeMismatch {
            expected: "list",
            got: list.type_name(),
        });
    };
    let items = items
        .iter()
        .map(string)
        .collect::<gotmpl::Result<Vec<_>>>()?;
    Ok(Value::String(items.join(string(separator)?).into()))
}

/// `title STRING`: Go's `strings.Title`, each word's first letter in upper case.
fn title(arguments: &[Value]) -> gotmpl::Result<Value> {
    // As in Go, words are separated by ASCII characters other than letters,
    // digits and `_`, and by other spaces.
    let separates = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        }
    };
    map_string("title", arguments, |text| {
        let mut titled = String::with_capacity(text.len());
        let mut previous = ' ';
        for c in text.chars() {
            if separates(previous) {
                titled.extend(c.to_uppercase());
            } else {
                titled.push(c);
            }
            previous = c;
        }
        titled
    })
}

/// `lower STRING`.
fn lower(arguments: &[Value]) -> gotmpl::Result<Value> {
    map_string("lower", arguments, str::to_lowercase)
}

/// `upper STRING`.
fn upper(arguments: &[Value]) -> gotmpl::Result<Value> {
    map_string("upper", arguments, str::to_uppercase)
}

/// `pad STRING PREFIX SUFFIX`: a non-empty string with that many spaces
/// before and after it.
fn pad(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [text, prefix, suffix] = arguments else {
        return Err(wrong_arguments("pad", arguments, 3));
    };
    let text = string(text)?;
    let spaces = |count: &Value| -> gotmpl::Result<String> {
        let count = integer(count)?;
        let count = usize::try_from(count)
            .map_err(|_| TemplateError::Exec(format!("pad: negative count {count}")))?;
        Ok(" ".repeat(count))
    };
    if text.is_empty() {
        return Ok(Value::String(text.into()));
    }
    Ok(Value::String(
        format!("{}{text}{}", spaces(prefix)?, spaces(suffix)?).into(),
    ))
}

/// `truncate STRING LENGTH`: the first LENGTH bytes of the string, less the
/// start of a character they would cut (Go cuts it).
fn truncate(arguments: &[Value]) -> gotmpl::Result<Value> {
    let [text, length] = arguments else {
        return Err(wrong_arguments("truncate", arguments, 2));
    };
    let text = string(text)?;
    let length = integer(length)?;
    let length = usize::try_from(length)
        .map_err(|_| TemplateError::Exec(format!("truncate: negative length {length}")))?;
    if text.len() <= length {
        return Ok(Value::String(text.into()));
    }
    let end = (0..=length)
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .unwrap_or(0);
    Ok(Value::String(text[..end].into()))
}

/// A `.Label` column's title in a table's header.
fn label_header(_: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::String(go_methods::LABEL_HEADER.into()))
}

/// A header function: the column title it is given, unchanged.
fn first_argument(arguments: &[Value]) -> gotmpl::Result<Value> {
    Ok(arguments.first().cloned().unwrap_or(Value::Nil))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PS: Listing = Listing {
        default_format: "table {{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}",
        headers: &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
        ],
    };

    fn ps_rows() -> Vec<serde_json::Value> {
        vec![
            json!({
                "ID": "3f4e8a1b2c9d", "Image": "alpine", "Command": "\"sleep 300\"",
                "CreatedAt": "2024-05-01 10:00:00 +0000 UTC", "RunningFor": "3 minutes ago",
                "Status": "Up 3 minutes", "State": "running", "Ports": "", "Names": "web",
                "Labels": "a=1,b=2",
            }),
            json!({
                "ID": "a1b2c3d4e5f6", "Image": "postgres:16", "Command": "\"docker-entrypoint…\"",
                "CreatedAt": "2024-05-01 09:00:00 +0000 UTC", "RunningFor": "About an hour ago",
                "Status": "Exited (0) 5 minutes ago", "State": "exited",
                "Ports": "0.0.0.0:5432->5432/tcp", "Names": "db-primary", "Labels": "",
            }),
        ]
    }

    #[test]
    fn columns_align_as_docker_top_aligns_them() {
        let lines = vec![
            vec!["UID".to_owned(), "PID".into(), "CMD".into()],
            vec![
                "postgres-superuser".to_owned(),
                "7".into(),
                "sleep 600".into(),
            ],
        ];
        let mut out = Vec::new();
        render_columns(&lines, 20, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "UID                  PID                 CMD\n\
             postgres-superuser   7                   sleep 600\n"
        );
    }

    fn inspected() -> serde_json::Value {
        json!({
            "Id": "3f4e8a1b2c9d0e1f",
            "Name": "/web",
            "RestartCount": 0,
            "State": {
                "Status": "running", "Running": true, "Paused": false, "Pid": 1234,
                "ExitCode": 0, "Health": null,
            },
            "Config": {
                "Cmd": ["sleep", "300"],
                "Labels": {"com.example.tier": "front", "app": "shop", "b": "2"},
            },
            "NetworkSettings": {
                "IPAddress": "172.17.0.2",
                "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
            },
            "Mounts": [
                {"Type": "bind", "Source": "/srv/data", "Destination": "/data", "RW": true},
                {"Type": "volume", "Source": "/var/lib/v", "Destination": "/cache", "RW": false},
            ],
            "Usage": {"Cpu": 1.5, "Whole": 3.0},
        })
    }

    fn rows(format: &str, rows: &[serde_json::Value]) -> Result<String> {
        let mut out = Vec::new();
        render_rows(&format.parse()?, &PS, rows, &mut out)?;
        Ok(String::from_utf8(out)?)
    }

    fn one(template: &str) -> String {
        render_one(template, &inspected(), &[]).unwrap()
    }

    #[test]
    fn a_rows_label_method_reads_its_labels() {
        assert_eq!(
            rows(r#"table {{.Names}}\t{{.Label "b"}}"#, &ps_rows()).unwrap(),
            "NAMES        LABEL\nweb          2\ndb-primary   \n"
        );
    }

    #[test]
    fn index_gives_go_zero_values_and_range_errors() {
        assert_eq!(one(r#"{{index .Config.Nope "x"}}"#), "");
        assert_eq!(one(r#"{{index .Config.Cmd 1}}"#), "300");
        assert_eq!(one(r#"{{index "abc" 0}}"#), "97");
        let out_of_range = render_one(r#"{{index .Config.Cmd 5}}"#, &inspected(), &[]);
        assert!(out_of_range
            .unwrap_err()
            .to_string()
            .contains("index out of range: 5"));
    }

    #[test]
    fn formats_read_like_docker() {
        let template = |table: bool, template: &str| Format::Template {
            table,
            template: template.to_owned(),
        };
        assert_eq!("".parse::<Format>().unwrap(), Format::Default);
        assert_eq!("table".parse::<Format>().unwrap(), Format::Default);
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert_eq!(
            r"table {{.ID}}\t{{.Names}}".parse::<Format>().unwrap(),
            template(true, "{{.ID}}\t{{.Names}}")
        );
        assert_eq!(
            r"  {{.ID}}\n{{.Names}}\\t  ".parse::<Format>().unwrap(),
            template(false, "{{.ID}}\n{{.Names}}\\\t")
        );
        assert_eq!(
            "{{.ID}}\t{{.Names}}".parse::<Format>().unwrap(),
            template(false, "{{.ID}}\t{{.Names}}")
        );
    }

    #[test]
    fn a_table_template_has_a_header_and_aligned_columns() {
        assert_eq!(
            rows(r"table {{.ID}}\t{{.Names}}", &ps_rows()).unwrap(),
            "CONTAINER ID   NAMES\n\
             3f4e8a1b2c9d   web\n\
             a1b2c3d4e5f6   db-primary\n"
        );
        // Columns are at least 10 wide, as in Docker.
        assert_eq!(
            rows(r"table {{.Names}}\t{{.State}}\t{{.Ports}}", &ps_rows()).unwrap(),
            "NAMES        STATE     PORTS\n\
             web          running   \n\
             db-primary   exited    0.0.0.0:5432->5432/tcp\n"
        );
    }

    #[test]
    fn fields_without_a_title_are_titled_in_upper_case() {
        assert_eq!(
            rows(r"table {{.Names}}\t{{.Labels}}", &ps_rows()).unwrap(),
            "NAMES        LABELS\n\
             web          a=1,b=2\n\
             db-primary   \n"
        );
    }

    #[test]
    fn header_functions_leave_titles_alone_but_pad_them() {
        assert_eq!(
            rows(
                r"table {{upper .Names}}\t{{truncate .ID 4}}\t{{pad .Image 1 0}}",
                &ps_rows()[..1]
            )
            .unwrap(),
            "NAMES     CONTAINER ID    IMAGE\n\
             WEB       3f4e            alpine\n"
        );
    }

    #[test]
    fn the_default_format_is_the_listings_table() {
        assert_eq!(
            rows("", &ps_rows()).unwrap(),
            rows("table", &ps_rows()).unwrap()
        );
        assert_eq!(
            rows("table", &ps_rows()).unwrap(),
            "CONTAINER ID   IMAGE         STATUS                     NAMES\n\
             3f4e8a1b2c9d   alpine        Up 3 minutes               web\n\
             a1b2c3d4e5f6   postgres:16   Exited (0) 5 minutes ago   db-primary\n"
        );
    }

    #[test]
    fn a_table_without_rows_is_its_header() {
        assert_eq!(
            rows("table", &[]).unwrap(),
            "CONTAINER ID   IMAGE     STATUS    NAMES\n"
        );
        assert_eq!(rows("{{.Names}}", &[]).unwrap(), "");
    }

    #[test]
    fn a_template_is_rendered_once_per_row() {
        assert_eq!(rows("{{.Names}}", &ps_rows()).unwrap(), "web\ndb-primary\n");
        assert_eq!(
            rows(r"{{.Names}}\t{{.State}}\n--", &ps_rows()).unwrap(),
            "web\trunning\n--\ndb-primary\texited\n--\n"
        );
    }

    #[test]
    fn json_is_one_compact_object_a_line() {
        let rows_ = [json!({"Names": "web", "ID": "3f4e", "Ports": "<none> & more", "Size": 0})];
        let expected =
            "{\"ID\":\"3f4e\",\"Names\":\"web\",\"Ports\":\"<none> & more\",\"Size\":0}\n";
        assert_eq!(rows("json", &rows_).unwrap(), expected);
        assert_eq!(rows("{{json .}}", &rows_).unwrap(), expected);
        assert_eq!(rows("json", &ps_rows()).unwrap().lines().count(), 2);
    }

    #[test]
    fn nested_fields_of_an_inspected_object() {
        assert_eq!(one("{{.NetworkSettings.IPAddress}}"), "172.17.0.2");
        assert_eq!(one("{{.State.Status}} {{.Name}}"), "running /web");
        assert_eq!(one("{{.State.Running}} {{.State.Paused}}"), "true false");
        assert_eq!(
            one(r#"{{index .Config.Labels "com.example.tier"}}"#),
            "front"
        );
        assert_eq!(
            one(r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#),
            "8080"
        );
        assert_eq!(
            one("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}"),
            "/srv/data:/data /var/lib/v:/cache "
        );
        assert_eq!(
            one("{{if .State.Running}}up{{else}}down{{end}}/{{if .State.Paused}}paused{{end}}"),
            "up/"
        );
        // Maps range in key order, as in Go.
        assert_eq!(
            one("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"),
            "app=shop;b=2;com.example.tier=front;"
        );
        assert_eq!(one("{{len .Mounts}} {{len .Config.Labels}}"), "2 3");
        // Lists and maps print as Go prints slices and maps.
        assert_eq!(one("{{.Config.Cmd}}"), "[sleep 300]");
        assert_eq!(
            one("{{.Config.Labels}}"),
            "map[app:shop b:2 com.example.tier:front]"
        );
    }

    #[test]
    fn json_of_part_of_an_object() {
        assert_eq!(
            one("{{json .State}}"),
            r#"{"ExitCode":0,"Health":null,"Paused":false,"Pid":1234,"Running":true,"Status":"running"}"#
        );
        assert_eq!(one("{{json .Config.Cmd}}"), r#"["sleep","300"]"#);
        assert_eq!(one("{{json .Name}}"), r#""/web""#);
        assert_eq!(one("{{json .Usage}}"), r#"{"Cpu":1.5,"Whole":3}"#);
    }

    #[test]
    fn numbers_print_as_in_go() {
        assert_eq!(
            one("{{.State.Pid}} {{.State.ExitCode}} {{.RestartCount}}"),
            "1234 0 0"
        );
        assert_eq!(one("{{.Usage.Cpu}} {{.Usage.Whole}}"), "1.5 3");
        assert_eq!(one("{{if eq .State.Pid 1234}}yes{{end}}"), "yes");
    }

    #[test]
    fn missing_and_null_fields_have_no_value() {
        assert_eq!(one("{{.Nope}}"), "<no value>");
        assert_eq!(one("{{.State.Nope}}"), "<no value>");
        assert_eq!(one("{{.State.Health}}"), "<no value>");
        // A map's missing key is the zero value, as Go's `index` gives it.
        assert_eq!(one(r#"{{index .Config.Labels "nope"}}"#), "");
        assert_eq!(one("{{if .Nope}}yes{{else}}no{{end}}"), "no");
        // A row's field that is not there is an error, naming those there
        // are; with no rows nothing is rendered, as in Docker.
        let err = rows(r"table {{.Nope}}", &ps_rows()[..1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template: can't evaluate field Nope: a row's fields are Command, CreatedAt, ID, \
             Image, Labels, Names, Ports, RunningFor, State, Status"
        );
        assert_eq!(rows(r"{{.Nope}}", &[]).unwrap(), "");
    }

    #[test]
    fn a_null_pointer_field_prints_as_go_prints_a_nil_pointer() {
        let pointers = [
            "State.Health",
            "Config.Healthcheck",
            "Config.Cmd",
            "Nope.Field",
        ];
        let one = |template: &str| render_one(template, &inspected(), &pointers).unwrap();
        assert_eq!(one("{{.State.Health}}"), "<nil>");
        assert_eq!(one("{{$.State.Health}}"), "<nil>");
        assert_eq!(
            one("{{if .State.Running}}[{{.State.Health}}]{{end}}"),
            "[<nil>]"
        );
        // Docker's JSON leaves out some nil pointers (an image's
        // Config.Healthcheck): missing from the object, they are nil too.
        assert_eq!(one("{{.Config.Healthcheck}}"), "<nil>");
        // A field that is not a pointer, or set, or of no object, is as before.
        assert_eq!(one("{{.State.Nope}}"), "<no value>");
        assert_eq!(one("{{.Nope.Field}}"), "<no value>");
        assert_eq!(
            one("{{.State.Status}} {{.Config.Cmd}}"),
            "running [sleep 300]"
        );
        assert_eq!(one("{{.Nope}}"), "<no value>");
        // What is not the field printed sees the null as before.
        assert_eq!(one("{{json .State.Health}}"), "null");
        assert_eq!(one("{{if .State.Health}}yes{{else}}no{{end}}"), "no");
        assert_eq!(one("{{.State.Health | printf \"%v\"}}"), "<nil>");
        // Only the object's own field: below another dot it is a map key.
        assert_eq!(one("{{with .State}}{{.Health}}{{end}}"), "<no value>");
        assert_eq!(
            one(r#"{{define "h"}}{{.State.Health}}{{end}}{{template "h" .}}"#),
            "<nil>"
        );
        let none = render_one("{{.State.Health}}", &inspected(), &[]).unwrap();
        assert_eq!(none, "<no value>");
    }

    #[test]
    fn dockers_string_functions() {
        let value = json!({"Name": "web server", "Names": "web,db,cache", "Empty": "",
                           "Id": "3f4e8a1b", "Unicode": "héllo", "List": ["a", "b"]});
        let render = |template| render_one(template, &value, &[]).unwrap();
        assert_eq!(
            render(r#"{{join (split .Names ",") " | "}}"#),
            "web | db | cache"
        );
        assert_eq!(render(r#"{{join .List ""}}"#), "ab");
        assert_eq!(
            render(r#"{{len (split .Empty ",")}} {{len (split "abc" "")}}"#),
            "1 3"
        );
        assert_eq!(
            render("{{upper .Name}} {{lower \"ABC\"}}"),
            "WEB SERVER abc"
        );
        assert_eq!(
            render(r#"{{title .Name}} {{title "it's a_b c-d"}}"#),
            "Web Server It'S A_b C-D"
        );
        assert_eq!(
            render("[{{pad .Id 2 1}}][{{pad .Empty 2 1}}]"),
            "[  3f4e8a1b ][]"
        );
        assert_eq!(
            render("{{truncate .Id 4}} {{truncate .Id 40}}"),
            "3f4e 3f4e8a1b"
        );
        assert_eq!(render("{{truncate .Unicode 2}}"), "h");
        assert_eq!(render("{{println .Id}}"), "3f4e8a1b\n");
        assert_eq!(render("{{.Names | upper}}"), "WEB,DB,CACHE");
    }

    #[test]
    fn function_arguments_are_checked() {
        let error = render_one("{{upper .State.Running}}", &inspected(), &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "template parsing error: type mismatch: expected string, got bool"
        );
        let error = render_one("{{truncate .Id}}", &inspected(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("truncate expects 2, got 1"),
            "{error}"
        );
        let error = render_one(r#"{{join .Mounts ","}}"#, &inspected(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("expected string, got map"),
            "{error}"
        );
    }

    #[test]
    fn bad_templates_are_one_line_errors() {
        for format in ["{{.Names", "table {{.ID}}\\t{{if .Names}}", "{{end}}"] {
            let error = format.parse::<Format>().unwrap_err().to_string();
            assert!(error.starts_with("template parsing error: "), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
        let error = render_one("{{.Id", &inspected(), &[])
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("template parsing error: "), "{error}");
        // A template that fails on a row writes nothing.
        let mut out = Vec::new();
        let format = "{{.Names.First}}".parse().unwrap();
        let error = render_rows(&format, &PS, &ps_rows(), &mut out).unwrap_err();
        assert!(
            error.to_string().starts_with("template parsing error: "),
            "{error}"
        );
        assert!(out.is_empty());
        let error = rows("{{nope .Names}}", &ps_rows()).unwrap_err().to_string();
        assert_eq!(error, "template parsing error: undefined function: nope");
    }

    #[test]
    fn blocks_must_be_closed_and_ends_must_close_a_block() {
        for template in [
            "{{if .A}}x",
            "{{range .A}}{{if .B}}x{{end}}",
            "{{.A}}{{end}}{{.B}}",
            "{{else}}",
            "{{with .A}}{{end}}{{end}}",
            "{{- if .A -}} x",
        ] {
            let error = template.parse::<Format>().unwrap_err().to_string();
            assert!(
                error.starts_with("template parsing error: unexpected "),
                "{error}"
            );
        }
        assert_eq!(
            "{{.A}}{{end}}".parse::<Format>().unwrap_err().to_string(),
            "template parsing error: unexpected {{end}}"
        );
        for template in [
            "{{if .A}}a{{else if .B}}b{{else with .C}}c{{else}}d{{end}}",
            "{{- if .A -}} x {{- end -}}",
            "{{/* {{if .A}} }} */}}x{{- /* {{end}} */ -}}",
            r#"{{printf "}}{{if \"x" }}{{"{{end}}"}}{{`{{end}}`}}{{'}'}}"#,
            "{{range $i, $m := .Mounts}}{{with .Source}}{{.}}{{end}}{{end}}",
            r#"{{define "x"}}X{{end}}{{template "x"}}{{block "b" .}}B{{end}}"#,
            "{{ end_time }}",
        ] {
            assert!(template.parse::<Format>().is_ok(), "{template}");
        }
    }

    #[test]
    fn inspect_templates_are_used_as_given() {
        assert_eq!(one(r"{{.Name}}\t{{.Id}}"), r"/web\t3f4e8a1b2c9d0e1f");
        assert_eq!(one("{{.Name}}\t{{.Id}}"), "/web\t3f4e8a1b2c9d0e1f");
    }

    #[test]
    fn format_values_parse_as_a_flag_gives_them() {
        let parse = |value: &str| value.parse::<Format>();
        assert_eq!(parse("").unwrap(), Format::Default);
        assert_eq!(parse("table").unwrap(), Format::Default);
        assert_eq!(parse("json").unwrap(), Format::Json);
        assert_eq!(
            parse(r"table {{.ID}}\t{{.Names}}").unwrap(),
            Format::Template {
                table: true,
                template: "{{.ID}}\t{{.Names}}".into()
            }
        );
        let error = parse("{{.ID").unwrap_err().to_string();
        assert!(error.contains("template parsing error"), "{error}");
    }
}
