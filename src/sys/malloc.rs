//! glibc malloc's arenas (mallopt(3)). Each thread that allocates may get an arena of its
//! own, and each arena reserves 64 MiB of address space: with glibc's default of 8 per core,
//! a daemon that has run a few dozen threads sits on about 1 GiB of virtual memory it never
//! uses, and under a virtual-memory limit (`ulimit -v`, systemd's MemoryMax on some setups)
//! thread creation then fails. The daemon caps the arenas at start.

/// Caps glibc malloc at `arenas` arenas; false if malloc refused (or is not glibc's).
pub fn limit_arenas(arenas: u16) -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt(3) takes two ints by value and touches only malloc's own
        // parameters; M_ARENA_MAX with a positive count is a documented, thread-safe call.
        unsafe { nix::libc::mallopt(nix::libc::M_ARENA_MAX, i32::from(arenas.max(1))) == 1 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        let _ = arenas;
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_the_cap() {
        assert!(super::limit_arenas(4));
    }
}
