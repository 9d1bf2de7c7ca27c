use super::*;
use std::os::unix::fs::PermissionsExt;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ssl-stapling-store-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

#[test]
fn write_read_list_remove() {
    let dir = tmpdir("rw");
    prepare(&dir, None).unwrap();
    let store = Store {
        dir: dir.clone(),
        writable: true,
        shared: false,
    };
    let key = StapleKey([0xab; 32]);
    assert!(!store.path_of(&key).exists());
    store.write(&key, b"one").unwrap();
    store.write(&key, b"two").unwrap();
    assert_eq!(read_file(&store.path_of(&key)).unwrap(), b"two");
    fs::write(dir.join("not-a-key.der"), b"x").unwrap();
    fs::write(dir.join(".abc.der.tmp.1"), b"x").unwrap();
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, key);
    // No temporary file is left behind by writes.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.iter().filter(|n| n.contains(TEMP_MARK)).count(), 1);
    store.remove(&key).unwrap();
    store.remove(&key).unwrap();
    assert!(!store.path_of(&key).exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_files_are_refused_without_blocking() {
    let dir = tmpdir("hostile");
    prepare(&dir, None).unwrap();
    let fifo = dir.join("fifo.der");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = read_file(&fifo).unwrap_err().to_string();
    assert!(e.contains("a FIFO, not a regular file"), "{e}");
    let target = dir.join("target");
    fs::write(&target, b"secret").unwrap();
    let link = dir.join("link.der");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = read_file(&link).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    let big = dir.join("big.der");
    fs::File::create(&big).unwrap().set_len(1 << 30).unwrap();
    let e = read_file(&big).unwrap_err().to_string();
    assert!(e.contains("1073741824 bytes, larger than"), "{e}");
    let e = read_file(&dir).unwrap_err().to_string();
    assert!(e.contains("a directory"), "{e}");
    // A link where a temporary file goes is replaced, never written
    // through.
    let store = Store {
        dir: dir.clone(),
        writable: true,
        shared: false,
    };
    let key = StapleKey([0x11; 32]);
    let tmp = dir.join(format!(".{key}{SUFFIX}{TEMP_MARK}{}", std::process::id()));
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    store.write(&key, b"staple").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"secret");
    assert_eq!(read_file(&store.path_of(&key)).unwrap(), b"staple");
    let mode = fs::metadata(store.path_of(&key)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prepare_names_proc() {
    let e = prepare(Path::new("/proc/self"), None).unwrap_err();
    assert!(e.contains("it is in /proc"), "{e}");
}

#[test]
fn prepare_refuses_a_file() {
    let dir = tmpdir("file");
    fs::write(&dir, b"x").unwrap();
    assert!(prepare(&dir, None).unwrap_err().contains("not a directory"));
    fs::remove_file(&dir).unwrap();
}

#[test]
fn lease_files() {
    let dir = tmpdir("lease");
    prepare(&dir, None).unwrap();
    let store = Store {
        dir: dir.clone(),
        writable: true,
        shared: true,
    };
    let key = StapleKey([0xcd; 32]);
    assert_eq!(
        store.take_lease(&key, "a 1", 100, 150).unwrap(),
        StoreLease::Taken { from: None }
    );
    // Another instance finds it live, with its holder and deadline.
    assert_eq!(
        store.take_lease(&key, "b 2", 120, 170).unwrap(),
        StoreLease::Held {
            by: "a 1".into(),
            until: 150
        }
    );
    // Past its deadline: taken over, saying from whom.
    assert_eq!(
        store.take_lease(&key, "b 2", 150, 200).unwrap(),
        StoreLease::Taken {
            from: Some("a 1".into())
        }
    );
    // Only the holder releases it.
    store.release_lease(&key, "a 1");
    assert!(matches!(
        store.take_lease(&key, "c 3", 160, 210).unwrap(),
        StoreLease::Held { .. }
    ));
    store.release_lease(&key, "b 2");
    assert_eq!(
        store.take_lease(&key, "c 3", 160, 210).unwrap(),
        StoreLease::Taken { from: None }
    );
    // A lease file with garbage in it (its writer died between creating
    // and writing it) is taken.
    fs::write(dir.join(format!("{key}.lease")), "garbage").unwrap();
    assert!(matches!(
        store.take_lease(&key, "d 4", 160, 210).unwrap(),
        StoreLease::Taken { .. }
    ));
    // A lease file is not a staple file.
    assert!(store.list().unwrap().is_empty());
    let _ = fs::remove_dir_all(&dir);
}
