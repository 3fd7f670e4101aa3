"""Head-motion statistics: real speakers (tracked in a prepared cache) vs. our generated motion on the
same speech. Per axis (yaw, pitch, roll): std and mean frame-to-frame change (jitter) at 25 fps, and the
correlation of head speed with speech activity. Needs `talkinghead prepare ../shared/data/talking -o
cache/talking` first. Run: .venv/bin/python benchmarks/motion_stats.py [CACHE]
"""
import sys
import numpy as np, glob
from talkinghead.face.track import FaceTrack
from talkinghead.motion.driving import driver_motion
from talkinghead.motion.head import HeadMotionOptions, head_pose
from talkinghead.audio.features import loudness
from talkinghead.weights import load_weights
CACHE = sys.argv[1] if len(sys.argv) > 1 else 'cache/talking'
ref = load_weights("lips").tensors["reference"].numpy()
def stats(paths):
    S, J, C = [], [], []
    for p in paths:
        z = np.load(p)
        if 'audio' not in z.files: continue
        tr = FaceTrack(z['times'], z['points'])
        if tr.found.mean() < 0.9: continue
        pose, _ = driver_motion(tr, ref)
        # resample to 25 fps
        t = np.arange(0, tr.times[-1], 1/25)
        pz = np.stack([np.interp(t, tr.times, pose[:, i]) for i in range(3)], 1)
        S.append(pz.std(0)); J.append(np.abs(np.diff(pz, axis=0)).mean(0))
        a = z['audio'].astype(np.float32)/32768
        db = loudness(a, len(t), 25.0)
        act = (db > db.max() - 30).astype(float)
        speed = np.abs(np.diff(pz, axis=0)).sum(1)
        if act[1:].std() > 0: C.append(np.corrcoef(speed, act[1:])[0,1])
    return np.array(S), np.array(J), np.array(C)
paths = sorted(glob.glob(f'{CACHE}/val__*.npz'))
grid = [p for p in paths if 'grid' in p]; other = [p for p in paths if 'grid' not in p]
for name, ps in (('grid', grid[::5]), ('other', other)):
    S, J, C = stats(ps)
    print(name, 'real std', S.mean(0).round(2), 'jitter', J.mean(0).round(3), 'speech corr', np.nanmean(C).round(3))
# generated on the same audio
for name, ps in (('grid', grid[::5]), ('other', other)):
    S, J, C = [], [], []
    for k, p in enumerate(ps):
        z = np.load(p); a = z['audio'].astype(np.float32)/32768
        n = int(len(a)/16000*25); db = loudness(a, n, 25.0)
        pose = head_pose(db, 25.0, np.random.default_rng(k), HeadMotionOptions())[:, :3]
        S.append(pose.std(0)); J.append(np.abs(np.diff(pose, axis=0)).mean(0))
        act = (db > db.max() - 30).astype(float); speed = np.abs(np.diff(pose, axis=0)).sum(1)
        if act[1:].std() > 0: C.append(np.corrcoef(speed, act[1:])[0,1])
    print(name, 'gen  std', np.mean(S,0).round(2), 'jitter', np.mean(J,0).round(3), 'speech corr', np.nanmean(C).round(3))
tr_other = [p for p in sorted(glob.glob(f'{CACHE}/train__*.npz')) if 'grid' not in p]
S, J, C = stats(tr_other)
print('train other real std', S.mean(0).round(2), 'median', np.median(S, 0).round(2), 'jitter', J.mean(0).round(3), 'n', len(S))
