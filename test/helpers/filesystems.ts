// Small file systems that tests can break under a running node: a tmpfs to fill up, and
// an ext4 image on a loop device that can be turned read-only while files are open for
// writing. Both need root (mount, losetup); `unavailable()` says why a test must skip.
//
// Why ext4 for "read-only": `mount -o remount,ro` refuses (EBUSY) while any file is open
// for writing — and LevelDB always holds its log open — and chmod does not stop root.
// ext4's test hook /sys/fs/ext4/<dev>/trigger_fs_error raises a file-system error,
// which with errors=remount-ro turns the mount read-only at once, open files included:
// exactly what a failing disk does to a running process.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Teardown } from './process.js';

const run = (cmd: string, args: readonly string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function probe(kind: 'tmpfs' | 'ext4'): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root (mount, losetup)';
  const dir = mkdtempSync(join(tmpdir(), 'weldr-fsprobe-'));
  try {
    if (kind === 'tmpfs') {
      run('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]);
      run('umount', [dir]);
      return undefined;
    }
    const fs = new Ext4Image(dir, 4);
    try {
      if (!existsSync(`/sys/fs/ext4/${basename(fs.device)}/trigger_fs_error`)) return 'the kernel has no ext4 trigger_fs_error';
    } finally {
      fs.destroy();
    }
    return undefined;
  } catch (err) {
    return `cannot mount a ${kind} (${(err as Error).message.split('\n')[0]})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const reasons = new Map<string, string | undefined>();

/** Why `kind` cannot be used here, or undefined when it can. */
export function unavailable(kind: 'tmpfs' | 'ext4'): string | undefined {
  if (!reasons.has(kind)) reasons.set(kind, probe(kind));
  return reasons.get(kind);
}

export interface Tmpfs {
  readonly dir: string;
  /** Write a filler file until the file system is full. */
  fill(): void;
  /** Delete the filler: space is free again. */
  free(): void;
}

/** A tmpfs of `size` (e.g. '2m'), unmounted when the test ends (after its processes are gone). */
export function mountTmpfs(t: Teardown, size: string): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'weldr-tmpfs-'));
  run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  t.teardown(() => {
    try {
      run('umount', [dir]);
    } catch {
      run('umount', ['-l', dir]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(16 * 1024, 0x2e);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(fd);
      }
      // The last partial page too.
      const small = openSync(filler, 'a');
      try {
        for (;;) writeSync(small, Buffer.alloc(1));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      } finally {
        closeSync(small);
      }
    },
    free() {
      unlinkSync(filler);
    },
  };
}

/** An ext4 image on a loop device, mounted with errors=remount-ro. */
class Ext4Image {
  readonly image: string;
  readonly device: string;
  private mounted = false;

  constructor(
    readonly dir: string,
    sizeMb: number,
  ) {
    this.image = `${dir}.img`;
    run('truncate', ['-s', `${sizeMb}M`, this.image]);
    run('mkfs.ext4', ['-q', '-F', this.image]);
    this.device = run('losetup', ['-f', '--show', this.image]);
    try {
      this.mount();
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  mount(): void {
    run('mount', ['-o', 'errors=remount-ro', this.device, this.dir]);
    this.mounted = true;
  }

  /** A file-system error: the mount turns read-only at once, open files included. */
  breakIt(): void {
    execFileSync('sh', ['-c', `echo 1 > /sys/fs/ext4/${basename(this.device)}/trigger_fs_error`]);
  }

  /** Unmount, repair with e2fsck, mount again (read-write). */
  repair(): void {
    run('umount', [this.dir]);
    this.mounted = false;
    try {
      run('e2fsck', ['-fy', this.device]);
    } catch (err) {
      // e2fsck exits 1 when it corrected errors: that is the point.
      if ((err as { status?: number }).status !== 1) throw err;
    }
    this.mount();
  }

  destroy(): void {
    if (this.mounted) {
      try {
        run('umount', [this.dir]);
      } catch {
        run('umount', ['-l', this.dir]);
      }
      this.mounted = false;
    }
    try {
      run('losetup', ['-d', this.device]);
    } finally {
      rmSync(this.image, { force: true });
    }
  }
}

export interface BreakableDisk {
  readonly dir: string;
  /** Turn the file system read-only under whatever has files open on it. */
  makeReadOnly(): void;
  /** Repair and mount it read-write again (as an operator would after fixing the disk). */
  repair(): void;
}

/** A small ext4 file system that can be made read-only under a running process; removed when the test ends. */
export function mountBreakableDisk(t: Teardown, sizeMb = 32): BreakableDisk {
  const dir = mkdtempSync(join(tmpdir(), 'weldr-ext4-'));
  const fs = new Ext4Image(dir, sizeMb);
  t.teardown(() => {
    fs.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, makeReadOnly: () => fs.breakIt(), repair: () => fs.repair() };
}
