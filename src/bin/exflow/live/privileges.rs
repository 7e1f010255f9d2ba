//! `exflow live --user`: giving up root once the interface is open.

use std::io;

/// Becomes `user` (its uid, gid and groups), as tcpdump -Z does, once the
/// capture is open; checks that root cannot be regained.
pub fn drop_privileges(user: &str) -> Result<(), String> {
    let name = std::ffi::CString::new(user).map_err(|_| "invalid user name".to_string())?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    // getpwnam returns NULL or a pointer to static storage, valid until the
    // next getpw* call; no other thread of exflow makes one.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(format!("no such user '{user}'"));
    }
    // SAFETY: `pw` is non-null (checked above) and points to the static
    // passwd entry, read here before any other getpw* call.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    let os = |what: &str| format!("{what}: {}", io::Error::last_os_error());
    // SAFETY: initgroups reads only `name`, a live NUL-terminated string;
    // setgid and setuid take plain integers and touch no memory of ours.
    // glibc applies set*id to every thread of the process, so no thread
    // keeps root.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(os("initgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(os("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(os("setuid"));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err("root could be regained after setuid".into());
        }
    }
    Ok(())
}
