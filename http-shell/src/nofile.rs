//! The process's limit of open files, raised for listeners that hold many connections.

use std::io;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises this process's soft limit of open files (RLIMIT_NOFILE) to at least `want`, and its
/// hard limit too when `want` is above it and the process may (root); otherwise up to the hard
/// limit. Returns the soft limit now in force, which may be below `want`: the caller decides
/// whether that is enough.
///
/// A daemon whose listeners' connection caps add up to more than the soft limit (commonly 1,024)
/// would otherwise meet EMFILE under a flood before its caps; the serving loop survives that,
/// but serves no newcomer until a descriptor is free.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft >= want {
        return Ok(soft);
    }
    if want > hard && setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        return Ok(want);
    }
    let new = want.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, new, hard).map_err(io::Error::from)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_and_never_lowered() {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        // Asking for less than the soft limit leaves it.
        assert_eq!(raise_nofile(soft.saturating_sub(1).max(1)).expect("raise"), soft);
        // Asking for the hard limit gets it.
        assert_eq!(raise_nofile(hard).expect("raise"), hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit").0, hard);
    }
}
