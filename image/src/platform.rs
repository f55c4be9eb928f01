//! The one platform hull's images and VMs are: linux/amd64.

/// Accepts a `--platform` (or `FROM --platform`) value that names
/// linux/amd64, as Docker spells it (`linux/amd64`, with a `/v1`..`/v4`
/// variant, `linux/x86_64`, `amd64`); refuses any other with a line naming
/// it.
pub fn check_platform(platform: &str) -> Result<(), String> {
    let lower = platform.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let (os, arch, variant) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(arch), None, None, None) => ("linux", arch, None),
        (Some(os), Some(arch), variant, None) => (os, arch, variant),
        _ => ("", "", None),
    };
    let amd64 = matches!(arch, "amd64" | "x86_64" | "x86-64");
    let variant_ok = variant.is_none_or(|v| matches!(v, "v1" | "v2" | "v3" | "v4"));
    match os == "linux" && amd64 && variant_ok {
        true => Ok(()),
        false => Err(format!(
            "platform {platform:?} is not supported: hull runs linux/amd64 images only"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_amd64_in_dockers_spellings_and_nothing_else() {
        for good in [
            "linux/amd64",
            "linux/amd64/v3",
            "linux/x86_64",
            "amd64",
            "Linux/AMD64",
        ] {
            assert_eq!(check_platform(good), Ok(()), "{good}");
        }
        for bad in [
            "linux/arm64",
            "windows/amd64",
            "linux/amd64/v9",
            "",
            "linux/amd64/v2/x",
        ] {
            let err = check_platform(bad).unwrap_err();
            assert!(err.contains("linux/amd64 images only"), "{err}");
        }
    }
}
