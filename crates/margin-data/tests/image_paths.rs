//! `image_folder::image_paths` lists the images in the order `load_image_folder` loads them:
//! checked on a folder whose images differ, so each decoded sample names its file.

use margin_data::image_folder::{image_paths, load_image_folder};

fn pgm(v: u8) -> Vec<u8> {
    let mut b = b"P5 2 2 255\n".to_vec();
    b.extend_from_slice(&[v; 4]);
    b
}

#[test]
fn paths_follow_the_loader_order() {
    let dir = std::env::temp_dir().join(format!("margin-image-paths-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // Created out of order: classes b, a/x (nested), a; files 10 before 2.
    let files = [("b/2.pgm", 10u8), ("b/10.pgm", 20), ("a/x/1.pgm", 30), ("a/1.pgm", 40), ("a/0.pgm", 50)];
    for (f, v) in files {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, pgm(v)).unwrap();
    }
    let paths = image_paths(&dir).unwrap();
    let (ds, classes) = load_image_folder(&dir, 2, false).unwrap();
    assert_eq!(paths.len(), ds.len());
    for (i, p) in paths.iter().enumerate() {
        let v = files.iter().find(|(f, _)| f == p).unwrap().1;
        assert!((ds.features[i * 4] - f32::from(v) / 255.0).abs() < 1e-6, "sample {i} is not {p}");
        assert_eq!(&classes[ds.labels[i] as usize], p.rsplit_once('/').unwrap().0);
    }
    assert_eq!(paths, ["a/0.pgm", "a/1.pgm", "a/x/1.pgm", "b/10.pgm", "b/2.pgm"]);
    let _ = std::fs::remove_dir_all(&dir);
}
