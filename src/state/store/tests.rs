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
    let store = Store::new(dir.clone(), true, false);
    let key = StapleKey([0xab; 32]);
    assert!(!store.path_of(&key).exists());
    store.write_bytes(&key, b"one").unwrap();
    store.write_bytes(&key, b"two").unwrap();
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
    let store = Store::new(dir.clone(), true, false);
    let key = StapleKey([0x11; 32]);
    let tmp = dir.join(format!(".{key}{SUFFIX}{TEMP_MARK}{}", std::process::id()));
    std::os::unix::fs::symlink(&target, &tmp).unwrap();
    store.write_bytes(&key, b"staple").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"secret");
    assert_eq!(read_file(&store.path_of(&key)).unwrap(), b"staple");
    let mode = fs::metadata(store.path_of(&key)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn prepare_names_proc() {
    let e = prepare(Path::new("/proc/self"), None).unwrap_err();
    assert!(matches!(e, PrepareError::KernelFileSystem("/proc")), "{e}");
    assert!(e.to_string().starts_with("it is in /proc, "), "{e}");
}

#[test]
fn prepare_refuses_a_file() {
    let dir = tmpdir("file");
    fs::write(&dir, b"x").unwrap();
    assert!(matches!(prepare(&dir, None), Err(PrepareError::NotADirectory)));
    fs::remove_file(&dir).unwrap();
}

#[test]
fn lease_files() {
    let dir = tmpdir("lease");
    prepare(&dir, None).unwrap();
    let store = Store::new(dir.clone(), true, true);
    let key = StapleKey([0xcd; 32]);
    assert_eq!(
        store.take_lease(&key, "a 1", 100, 150).unwrap(),
        StoreLease::Taken { displaced: None }
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
            displaced: Some(Displaced::Expired { by: "a 1".into() })
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
        StoreLease::Taken { displaced: None }
    );
    // A lease file with garbage in it is replaced, saying what it held.
    fs::write(dir.join(format!("{key}.lease")), "garbage").unwrap();
    assert!(matches!(
        store.take_lease(&key, "d 4", 160, 210).unwrap(),
        StoreLease::Taken { displaced: Some(Displaced::NotALease(why)) } if why == NotALease::Garbage(7)
    ));
    // A lease file is not a staple file.
    assert!(store.list().unwrap().is_empty());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn lease_files_that_are_not_leases() {
    let dir = tmpdir("lease-hostile");
    prepare(&dir, None).unwrap();
    let store = Store::new(dir.clone(), true, true);
    let key = StapleKey([0xce; 32]);
    let lease = store.lease_path(&key);
    let now = 1_800_000_000;
    let take = || store.take_lease(&key, "me 1", now, now + 45).unwrap();
    let reset = || {
        let _ = fs::remove_file(&lease);
        let _ = fs::remove_dir_all(&lease);
    };
    let left_behind = || {
        fs::read_dir(&dir)
            .unwrap()
            .filter_map(|d| d.ok())
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect::<Vec<_>>()
    };
    // A deadline a fraction ahead parses and holds.
    fs::write(&lease, format!("other 7 {}.5\n", now + 10)).unwrap();
    assert_eq!(
        take(),
        StoreLease::Held {
            by: "other 7".into(),
            until: now + 11
        }
    );
    // Within the longest lease plus the clock allowance: held.
    fs::write(&lease, format!("other 7 {}\n", now + MAX_LEASE_AHEAD_SECS)).unwrap();
    assert!(matches!(take(), StoreLease::Held { .. }));
    // Further ahead (decades, or an hour): void.
    for ahead in [3600, 100 * 365 * 86400] {
        fs::write(&lease, format!("other 7 {}\n", now + ahead)).unwrap();
        match take() {
            StoreLease::Taken {
                displaced: Some(Displaced::TooFarAhead { by, until }),
            } => {
                assert_eq!(by, "other 7");
                assert_eq!(until, (now + ahead) as f64);
            }
            other => panic!("{other:?}"),
        }
        reset();
    }
    // Not leases: each replaced, saying what it was, nothing left behind.
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "directory",
            Box::new(|| fs::create_dir(&lease).unwrap()),
            "a directory",
        ),
        (
            "directory with files",
            Box::new(|| {
                fs::create_dir(&lease).unwrap();
                fs::write(lease.join("x"), "y").unwrap();
            }),
            "a directory",
        ),
        (
            "FIFO",
            Box::new(|| {
                let c = CString::new(lease.as_os_str().as_bytes()).unwrap();
                // SAFETY: a valid C path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            }),
            "a FIFO",
        ),
        (
            "link",
            Box::new(|| std::os::unix::fs::symlink("/dev/zero", &lease).unwrap()),
            "symbolic link",
        ),
        (
            "large",
            Box::new(|| fs::write(&lease, vec![b'x'; 1 << 20]).unwrap()),
            "1048576 bytes",
        ),
        (
            "garbage",
            Box::new(|| fs::write(&lease, b"\xff\xfe 1 2").unwrap()),
            "are not",
        ),
        (
            "no pid",
            Box::new(|| fs::write(&lease, "host x 123").unwrap()),
            "are not",
        ),
        (
            "infinite",
            Box::new(|| fs::write(&lease, "host 1 inf").unwrap()),
            "are not",
        ),
    ];
    for (what, make, said) in cases {
        reset();
        make();
        match take() {
            StoreLease::Taken {
                displaced: Some(Displaced::NotALease(why)),
            } => assert!(why.to_string().contains(said), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(left_behind().is_empty(), "{what}: {:?}", left_behind());
        assert_eq!(
            read_file(&lease)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap(),
            format!("me 1 {}\n", now + 45),
            "{what}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
