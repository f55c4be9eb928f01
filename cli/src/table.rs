//! Tables as hull prints them (`ps`, `top`, `stats`): a header and rows,
//! each column as wide as its widest cell, three spaces apart.

pub fn print<R: AsRef<[String]>>(header: &[&str], rows: &[R]) {
    let mut widths: Vec<usize> = header.iter().map(|cell| cell.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", padded.join("   ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.as_ref().iter().map(String::as_str).collect());
    }
}
