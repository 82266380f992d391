import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock } from "./lock.ts";
import { LockedError } from "./errors.ts";

Deno.test("acquireLock() refuses a second holder and frees on release", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "p.lock");
  const first = acquireLock(path, "p");
  assert.throws(() => acquireLock(path, "p"), (error: unknown) => {
    assert.ok(error instanceof LockedError);
    assert.equal(error.exitCode, 75);
    assert.match(error.message, /another run holds the lock/);
    assert.match(error.message, new RegExp(`pid ${Deno.pid}`));
    return true;
  });
  first.release();
  const second = acquireLock(path, "p");
  second.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("acquireLock() is not blocked by a lock left by a killed process", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "p.lock");
  const holder = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const f = Deno.openSync(${JSON.stringify(path)}, {read:true,write:true,create:true});
       f.lockSync(true); console.log("locked"); setInterval(() => {}, 1000);`,
    ],
    stdout: "piped",
  }).spawn();
  const reader = holder.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /locked/);
  assert.throws(() => acquireLock(path, "p"), LockedError);
  holder.kill("SIGKILL");
  await holder.status;
  reader.releaseLock();
  await holder.stdout.cancel();
  const lock = acquireLock(path, "p");
  lock.release();
  await Deno.remove(dir, { recursive: true });
});
