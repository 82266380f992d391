/**
 * Generates the Texas811 demo fixtures: what a scraper of the Texas811 portal
 * writes, ~200 locate tickets with their utility member responses.
 *
 *   deno run -A tools/gen_texas811.ts           # (re)writes fixtures/texas811/
 *   deno run -A tools/gen_texas811.ts --check   # exits 1 when a file is stale
 *
 * Deterministic (seeded PRNG, fixed dates): regenerating is byte-identical.
 * See fixtures/texas811/README.md for the format.
 * @module
 */

/** The zone the portal shows local times in. */
const ZONE = "America/Chicago";
/** When the (imaginary) scrape ran. */
const SCRAPED_AT = "2025-11-05T06:30:12-06:00";
const SCRAPE_TIME = Temporal.PlainDateTime.from("2025-11-05T06:30:12");

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Helpers over one random stream. */
class Dice {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = prng(seed);
  }
  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.#next() * values.length)];
  }
  /** A value chosen by weight: `[[value, weight], ...]`. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = this.#next() * total;
    for (const [value, weight] of entries) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return entries[entries.length - 1][0];
  }
  /** `count` distinct values. */
  sample<T>(values: readonly T[], count: number): T[] {
    const pool = [...values];
    const out: T[] = [];
    while (out.length < count && pool.length > 0) {
      out.push(pool.splice(Math.floor(this.#next() * pool.length), 1)[0]);
    }
    return out;
  }
  /** Uniform in [min, max), for coordinates. */
  float(min: number, max: number): number {
    return min + this.#next() * (max - min);
  }
}

const PLACES = [
  { city: "Dallas", county: "Dallas", lat: 32.7767, lng: -96.797, area: "214" },
  { city: "Fort Worth", county: "Tarrant", lat: 32.7555, lng: -97.3308, area: "817" },
  { city: "Arlington", county: "Tarrant", lat: 32.7357, lng: -97.1081, area: "817" },
  { city: "Plano", county: "Collin", lat: 33.0198, lng: -96.6989, area: "972" },
  { city: "Frisco", county: "Collin", lat: 33.1507, lng: -96.8236, area: "469" },
  { city: "McKinney", county: "Collin", lat: 33.1972, lng: -96.6398, area: "469" },
  { city: "Denton", county: "Denton", lat: 33.2148, lng: -97.1331, area: "940" },
  { city: "Austin", county: "Travis", lat: 30.2672, lng: -97.7431, area: "512" },
  { city: "Round Rock", county: "Williamson", lat: 30.5083, lng: -97.6789, area: "512" },
  { city: "Georgetown", county: "Williamson", lat: 30.6333, lng: -97.677, area: "512" },
  { city: "San Antonio", county: "Bexar", lat: 29.4241, lng: -98.4936, area: "210" },
  { city: "New Braunfels", county: "Comal", lat: 29.703, lng: -98.1245, area: "830" },
  { city: "Houston", county: "Harris", lat: 29.7604, lng: -95.3698, area: "713" },
  { city: "Katy", county: "Harris", lat: 29.7858, lng: -95.8245, area: "281" },
  { city: "Sugar Land", county: "Fort Bend", lat: 29.6197, lng: -95.6349, area: "281" },
  { city: "Waco", county: "McLennan", lat: 31.5493, lng: -97.1467, area: "254" },
  { city: "College Station", county: "Brazos", lat: 30.628, lng: -96.3344, area: "979" },
  { city: "Tyler", county: "Smith", lat: 32.3513, lng: -95.3011, area: "903" },
] as const;

const STREETS = [
  "Main St",
  "Elm St",
  "Pecan St",
  "Live Oak Dr",
  "Bluebonnet Ln",
  "Mesquite Trl",
  "Preston Rd",
  "Cedar Ridge Dr",
  "Post Oak Blvd",
  "Ranch Road 620",
  "FM 1960 Rd",
  "County Road 110",
  "Lamar Blvd",
  "Magnolia Ave",
  "Sam Houston Pkwy",
  "Riverside Dr",
  "Hillcrest Rd",
  "Wildflower Way",
] as const;

const COMPANIES = [
  { name: "Lone Star Directional Drilling LLC", domain: "lonestardd.com" },
  { name: "Ramirez Underground Utilities", domain: "ramirezug.com" },
  { name: "Texas Fiber Builders Inc", domain: "txfiberbuilders.com" },
  { name: "Brazos Valley Plumbing", domain: "bvplumbing.net" },
  { name: "North Texas Excavating Co", domain: "ntxexcavating.com" },
  { name: "Hill Country Fence & Post", domain: "hcfence.com" },
  { name: "Bluebonnet Landscaping", domain: "bluebonnetland.com" },
  { name: "Gulf Coast Pipeline Services", domain: "gcpipeline.com" },
  { name: "Pinnacle Electric Contractors", domain: "pinnacle-elec.com" },
  { name: "Longhorn Irrigation & Drainage", domain: "longhornirrigation.com" },
  { name: "Sabine Civil Constructors", domain: "sabinecivil.com" },
  { name: "Red River Pole Line", domain: "redriverpole.com" },
  { name: "Homeowner", domain: "" },
] as const;

const FIRST_NAMES = [
  "Jose",
  "Maria",
  "James",
  "Linda",
  "Carlos",
  "Ashley",
  "Robert",
  "Guadalupe",
  "Michael",
  "Brittany",
  "David",
  "Rosa",
  "Tyler",
  "Kayla",
  "Juan",
  "Travis",
] as const;

const LAST_NAMES = [
  "Garcia",
  "Martinez",
  "Smith",
  "Johnson",
  "Hernandez",
  "Williams",
  "Lopez",
  "Brown",
  "Nguyen",
  "Davis",
  "Gonzalez",
  "Miller",
  "Wilson",
  "Perez",
  "Moore",
  "Castillo",
] as const;

const WORK = [
  { nature: "Install fiber optic cable", doneFor: "AT&T" },
  { nature: "Directional bore for telecom drop", doneFor: "Charter Communications" },
  { nature: "Replace water service line", doneFor: "Homeowner" },
  { nature: "Install fence posts", doneFor: "Homeowner" },
  { nature: "Gas service renewal", doneFor: "Atmos Energy" },
  { nature: "Storm drain repair", doneFor: "City" },
  { nature: "Replace utility pole", doneFor: "Oncor" },
  { nature: "Install landscape irrigation", doneFor: "HOA" },
  { nature: "Sewer tap", doneFor: "Developer" },
  { nature: "Foundation repair", doneFor: "Homeowner" },
  { nature: "Install electric service", doneFor: "Builder" },
  { nature: "Road widening - storm and paving", doneFor: "TxDOT" },
] as const;

const EXTENTS = [
  "Mark entire front easement of property",
  "Mark 50 ft radius around white flags",
  "Mark from pole to pedestal at back lot line",
  "Mark both sides of street 200 ft east and west of address",
  "Mark entire lot including alley",
  "Mark along white lines from meter to house",
  "Mark ROW from intersection north 500 ft",
] as const;

const REMARKS = [
  "Gate code 1234#",
  "Beware of dog in backyard",
  "Call excavator on arrival",
  "Area white lined",
  "Work area is in the alley behind the address",
] as const;

const EMERGENCY_REMARKS = [
  "Emergency - water main break, crew on site",
  "Emergency - gas leak reported, service crew en route",
  "Emergency - pole down after storm, power out to customers",
  "Emergency - sewer backup into residence",
] as const;

const MEMBERS = [
  ["ATMOS", "Atmos Energy"],
  ["ONCOR", "Oncor Electric Delivery"],
  ["CPE", "CenterPoint Energy"],
  ["ATTTX", "AT&T Texas"],
  ["CHARTER", "Charter Communications (Spectrum)"],
  ["FRONTIER", "Frontier Communications"],
  ["VZBTX", "Verizon Business"],
  ["TXGAS", "Texas Gas Service"],
  ["TNMP", "Texas-New Mexico Power"],
  ["AEPTX", "AEP Texas"],
  ["ETC", "Energy Transfer"],
  ["KMTP", "Kinder Morgan Texas Pipeline"],
  ["GRANDE", "Grande Communications"],
  ["ZAYO", "Zayo Group"],
  ["CITYWTR", "City Water & Sewer"],
] as const;

const RESPONSES: readonly (readonly [readonly [string, string], number])[] = [
  [["001", "Clear - No conflict"], 45],
  [["002", "Marked"], 35],
  [["003", "Marked - Partial, see comments"], 6],
  [["004", "Not complete - Agreed date with excavator"], 5],
  [["006", "Locate delayed - Extraordinary circumstances"], 4],
  [["007", "Clear - Abandoned facilities only"], 5],
] as const;

const COMMENTS = [
  "Marked w/ yellow paint and flags",
  "No gas facilities in area",
  "Fiber in ROW - marked orange",
  "Hand dig within 18 inches of marks",
  "Electric primary marked red",
  "Photos attached to ticket",
  "Locator will return 09:00 AM next business day",
  " See attached map ",
] as const;

const TYPES: readonly (readonly [string, number])[] = [
  ["Normal", 70],
  ["Emergency", 9],
  ["Update", 12],
  ["Survey", 9],
];

/**
 * Local times chosen on purpose: the spring-forward night (2025-03-09, 02:00
 * does not exist) and the fall-back night (2025-11-02, 01:00-01:59 happens
 * twice), so time-zone parsing is exercised. Ticket i (by position before
 * sorting) is created at SPECIAL[i].
 */
const SPECIAL: readonly { created: string; type: "Normal" | "Emergency" }[] = [
  { created: "2025-03-08T23:40", type: "Emergency" },
  { created: "2025-03-09T01:30", type: "Emergency" },
  { created: "2025-03-09T03:15", type: "Emergency" },
  { created: "2025-03-07T16:45", type: "Normal" },
  { created: "2025-03-10T07:05", type: "Normal" },
  { created: "2025-11-01T23:55", type: "Emergency" },
  { created: "2025-11-02T01:20", type: "Emergency" },
  { created: "2025-11-02T01:50", type: "Emergency" },
  { created: "2025-10-31T15:10", type: "Normal" },
  { created: "2025-11-03T08:00", type: "Normal" },
];

/** `MM/dd/yyyy hh:mm a`, as the portal shows times. */
function portalTime(time: Temporal.PlainDateTime): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  const hour12 = time.hour % 12 === 0 ? 12 : time.hour % 12;
  return `${pad(time.month)}/${pad(time.day)}/${time.year} ${pad(hour12)}:${pad(time.minute)} ${
    time.hour < 12 ? "AM" : "PM"
  }`;
}

/** Moves a wall time out of a spring-forward gap, so every fixture time exists. */
function existing(time: Temporal.PlainDateTime): Temporal.PlainDateTime {
  // In a gap, "compatible" lands on another wall time; ambiguous times (fall back) stay.
  const zoned = time.toZonedDateTime(ZONE, { disambiguation: "compatible" });
  return zoned.toPlainDateTime().equals(time) ? time : time.add({ hours: 1 });
}

/** `days` business days later, same wall time; weekend starts move to Monday 07:00 first. */
function addBusinessDays(start: Temporal.PlainDateTime, days: number): Temporal.PlainDateTime {
  let time = start;
  if (time.dayOfWeek >= 6) {
    time = time.add({ days: 8 - time.dayOfWeek }).with({ hour: 7, minute: 0 });
  }
  let left = days;
  while (left > 0) {
    time = time.add({ days: 1 });
    if (time.dayOfWeek < 6) left--;
  }
  return time;
}

function mixedCase(dice: Dice, value: string): string {
  if (!dice.chance(0.12)) return value;
  return dice.chance(0.5) ? value.toLowerCase() : value.toUpperCase();
}

function phone(dice: Dice, area: string): string {
  const line = `01${String(dice.int(0, 99)).padStart(2, "0")}`;
  return dice.weighted([
    [`(${area}) 555-${line}`, 6],
    [`${area}-555-${line}`, 3],
    [`${area}555${line}`, 1],
  ]);
}

type Ticket = Record<string, unknown>;

function makeTicket(dice: Dice, index: number, used: Set<string>, earlier: string[]): Ticket {
  const special = SPECIAL[index];
  const type: string = special?.type ??
    (earlier.length > 0
      ? dice.weighted(TYPES)
      : dice.weighted(TYPES.filter(([name]) => name !== "Update")));
  const created = existing(
    special
      ? Temporal.PlainDateTime.from(special.created)
      : Temporal.PlainDateTime.from("2025-01-06T00:00").add({
        days: dice.int(0, 295),
        hours: type === "Emergency" ? dice.int(0, 23) : dice.int(7, 17),
        minutes: dice.int(0, 59),
      }),
  );
  const workStart = existing(
    type === "Emergency"
      ? created.add({ minutes: dice.int(15, 120) })
      : addBusinessDays(created, 2),
  );
  const expiration = existing(workStart.add({ days: 14 }));

  let number: string;
  do {
    number = `25${String(created.dayOfYear).padStart(3, "0")}${
      String(dice.int(0, 99999)).padStart(5, "0")
    }`;
  } while (used.has(number));
  used.add(number);

  const place = dice.pick(PLACES);
  const company = dice.pick(COMPANIES);
  const first = dice.pick(FIRST_NAMES);
  const last = dice.pick(LAST_NAMES);
  const work = dice.pick(WORK);
  const cancelled = dice.chance(0.04);
  const status = cancelled
    ? "Cancelled"
    : Temporal.PlainDateTime.compare(expiration, SCRAPE_TIME) < 0
    ? dice.weighted([["Closed", 3], ["Expired", 1]] as const)
    : "Open";

  const memberCount = dice.int(2, 8);
  const members = dice.sample(MEMBERS, memberCount);
  const span = Math.max(30, workStart.since(created, { largestUnit: "minutes" }).minutes);
  // The portal lists responses by member code.
  members.sort(([a], [b]) => a.localeCompare(b));
  const responses = members.map(function makeResponse([code, name]) {
    const [responseCode, responseDescription] = dice.weighted(RESPONSES);
    let answered = created.add({ minutes: dice.int(10, span + 240) });
    // Locators answer normal tickets in working hours; emergencies at any hour.
    if (type !== "Emergency" && (answered.hour < 7 || answered.hour > 18)) {
      answered = answered.with({ hour: dice.int(7, 18) });
    }
    answered = existing(answered);
    return {
      memberCode: code,
      memberName: dice.chance(0.06) ? `${name} ` : name,
      responseCode,
      responseDescription,
      responseDate: portalTime(answered),
      comments: responseCode === "001" || dice.chance(0.5) ? "" : dice.pick(COMMENTS),
    };
  });

  const companyName = company.name === "Homeowner" ? `${first} ${last}` : company.name;
  const email = company.domain === "" || dice.chance(0.1)
    ? ""
    : `${first.toLowerCase()}.${last.toLowerCase()}@${company.domain}`;
  const houseNumber = dice.int(100, 9999);
  return {
    ticketNumber: number,
    ticketType: type,
    originalTicketNumber: type === "Update" ? dice.pick(earlier) : "",
    status: mixedCase(dice, status),
    createdDate: portalTime(created),
    workStartDate: portalTime(workStart),
    expirationDate: portalTime(expiration),
    excavator: {
      company: dice.chance(0.08) ? `${companyName}  ` : companyName,
      contactName: dice.chance(0.05) ? `${first} ${last} ` : `${first} ${last}`,
      phone: phone(dice, place.area),
      email,
    },
    workSite: {
      address: `${houseNumber} ${dice.chance(0.2) ? `${dice.pick(["N", "S", "E", "W"])} ` : ""}${
        dice.pick(STREETS)
      }`,
      nearestIntersection: dice.chance(0.15) ? "" : dice.pick(STREETS),
      city: place.city,
      county: place.county,
      state: "TX",
      latitude: dice.float(place.lat - 0.08, place.lat + 0.08).toFixed(6),
      longitude: dice.float(place.lng - 0.08, place.lng + 0.08).toFixed(6),
      natureOfWork: work.nature,
      workDoneFor: work.doneFor === "City" ? `City of ${place.city}` : work.doneFor,
      extent: dice.chance(0.05) ? "" : dice.pick(EXTENTS),
      duration: dice.pick(["1 DAY", "2 DAYS", "1 WEEK", "2 WEEKS", "1 MONTH"]),
      explosives: dice.chance(0.02) ? "Y" : "N",
      whitePaint: dice.chance(0.6) ? "Y" : "N",
    },
    remarks: type === "Emergency"
      ? dice.pick(EMERGENCY_REMARKS)
      : dice.chance(0.3)
      ? dice.pick(REMARKS)
      : "",
    responses,
  };
}

function createdKey(ticket: Ticket): string {
  const [date, time, half] = String(ticket.createdDate).split(" ");
  const [month, day, year] = date.split("/");
  const [hour, minute] = time.split(":").map(Number);
  const hour24 = (hour % 12) + (half === "PM" ? 12 : 0);
  return `${year}${month}${day}${String(hour24).padStart(2, "0")}${
    String(minute).padStart(2, "0")
  }`;
}

function tickets(seed: number, count: number): Ticket[] {
  const dice = new Dice(seed);
  const used = new Set<string>();
  const earlier: string[] = [];
  const out: Ticket[] = [];
  for (let i = 0; i < count; i++) {
    const ticket = makeTicket(dice, i, used, earlier);
    earlier.push(String(ticket.ticketNumber));
    out.push(ticket);
  }
  // The portal lists tickets oldest first; ties keep generation order (stable sort).
  return out.sort((a, b) => createdKey(a).localeCompare(createdKey(b)));
}

function document(list: Ticket[]): string {
  return JSON.stringify({ scraped_at: SCRAPED_AT, source: "texas811", tickets: list }, null, 2) +
    "\n";
}

/** The unparseable date the bad fixture carries. */
export const BAD_DATE = "13/45/2025 99:99 XM";

/** Every fixture file's name and content. */
export function generateFixtures(): Record<string, string> {
  const good = tickets(811, 200);
  const bad = tickets(911, 20);
  bad[4].createdDate = BAD_DATE;
  bad[11].workStartDate = BAD_DATE;
  delete bad[16].ticketNumber;
  return {
    "tickets.json": document(good),
    "tickets.jsonl": good.slice(0, 20).map((ticket) => JSON.stringify(ticket)).join("\n") + "\n",
    "tickets_bad.json": document(bad),
  };
}

if (import.meta.main) {
  const dir = new URL("../fixtures/texas811/", import.meta.url);
  const check = Deno.args.includes("--check");
  let stale = 0;
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(generateFixtures())) {
    const file = new URL(name, dir);
    if (check) {
      const current = await Deno.readTextFile(file).catch(() => "");
      if (current !== content) {
        console.error(`fixtures/texas811/${name} is stale: run deno run -A tools/gen_texas811.ts`);
        stale++;
      }
    } else {
      await Deno.writeTextFile(file, content);
      console.log(`Wrote fixtures/texas811/${name}`);
    }
  }
  if (stale > 0) Deno.exit(1);
}
