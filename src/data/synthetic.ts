// A seeded synthetic electronics catalog and shoppers, for the demo and for tests that need data
// with structure a model can learn. Nothing here is random at run time: the same options give the
// same files.
//
// Catalog: devices (phones, laptops, headphones, cameras, ...) from a handful of invented brands,
// titled like "Sonix Wireless Headphones Pro", and accessories that belong to a device family and
// a device brand, titled like "Armorly Slim Case for Sonix Phones". Item attributes: category,
// brand, kind ("device" | "accessory"), price, and for accessories `forCategory`/`forBrand`.
// No title is a substring of another, so title matching in the metrics is never ambiguous.
//
// Shoppers: each has latent tastes (2–3 favourite device categories, a favourite brand they buy
// with some loyalty, a price level) and a sequential habit: after a device, they often buy
// accessories for that device (a case after a phone), matching its brand; otherwise they buy a new
// device from their favourite categories. Popularity inside a group is Zipf-like. So a history
// predicts the next item through category taste, brand loyalty and device→accessory transitions,
// which both the Markov baseline and an LLM reading titles can pick up.
//
// `prepareSynthetic` runs the generated interactions through the same protocol as real data
// (k-core, sampling, leave-one-out, candidates) and returns what `prepare` writes.
import { applyProtocol, DEFAULT_SEED, type PreparedData, type ProtocolOptions } from "./protocol.js";
import { Rng } from "../util/random.js";
import type { Interaction, Item } from "./types.js";

export interface SyntheticOptions {
  /** Shoppers to generate (default 1500). */
  users?: number;
  /** Catalog size, devices and accessories together (default 600). */
  items?: number;
  /** Purchases per shopper, drawn uniformly from [minLength, maxLength] (default 8..20). */
  minLength?: number;
  maxLength?: number;
  /** Probability of buying an accessory for the current device instead of a new device (0.55). */
  accessoryRate?: number;
  /** Probability of buying the favourite brand when it makes the wanted device (0.6). */
  brandLoyalty?: number;
  seed?: number;
}

interface DeviceFamily {
  category: string;
  /** Plural used in accessory titles: "Case for Sonix Phones". */
  short: string;
  nouns: string[];
  adjectives: string[];
  accessories: { category: string; nouns: string[] }[];
  basePrice: number;
}

const FAMILIES: DeviceFamily[] = [
  {
    category: "Smartphones",
    short: "Phones",
    nouns: ["Phone", "Smartphone"],
    adjectives: ["Galaxy", "Nova", "Pixel", "Vista"],
    basePrice: 600,
    accessories: [
      { category: "Phone Cases", nouns: ["Case", "Folio Case"] },
      { category: "Screen Protectors", nouns: ["Screen Protector"] },
      { category: "Phone Chargers", nouns: ["Fast Charger", "Charging Cable"] },
    ],
  },
  {
    category: "Laptops",
    short: "Laptops",
    nouns: ["Laptop", "Notebook"],
    adjectives: ["Thin", "Studio", "Creator", "Travel"],
    basePrice: 1100,
    accessories: [
      { category: "Laptop Sleeves", nouns: ["Sleeve", "Backpack"] },
      { category: "Mice", nouns: ["Wireless Mouse"] },
      { category: "Laptop Stands", nouns: ["Stand", "Docking Station"] },
    ],
  },
  {
    category: "Headphones",
    short: "Headphones",
    nouns: ["Headphones", "Earbuds"],
    adjectives: ["Wireless", "Studio", "Sport", "Noise Cancelling"],
    basePrice: 180,
    accessories: [
      { category: "Headphone Cases", nouns: ["Carry Case"] },
      { category: "Ear Tips", nouns: ["Foam Ear Tips", "Ear Cushions"] },
    ],
  },
  {
    category: "Cameras",
    short: "Cameras",
    nouns: ["Camera", "Mirrorless Camera"],
    adjectives: ["Action", "Vlog", "Compact", "Zoom"],
    basePrice: 800,
    accessories: [
      { category: "Camera Bags", nouns: ["Camera Bag"] },
      { category: "Memory Cards", nouns: ["Memory Card"] },
      { category: "Tripods", nouns: ["Tripod", "Gimbal"] },
    ],
  },
  {
    category: "Smartwatches",
    short: "Watches",
    nouns: ["Smartwatch", "Fitness Tracker"],
    adjectives: ["Active", "Classic", "Trail", "Fit"],
    basePrice: 250,
    accessories: [
      { category: "Watch Bands", nouns: ["Sport Band", "Leather Band"] },
      { category: "Watch Chargers", nouns: ["Charging Dock"] },
    ],
  },
  {
    category: "Game Consoles",
    short: "Consoles",
    nouns: ["Game Console", "Handheld Console"],
    adjectives: ["Arcade", "Quest", "Turbo", "Pocket"],
    basePrice: 450,
    accessories: [
      { category: "Controllers", nouns: ["Controller", "Racing Wheel"] },
      { category: "Gaming Headsets", nouns: ["Gaming Headset"] },
    ],
  },
  {
    category: "Tablets",
    short: "Tablets",
    nouns: ["Tablet", "E-Reader"],
    adjectives: ["Canvas", "Reader", "Slate", "Note"],
    basePrice: 400,
    accessories: [
      { category: "Tablet Cases", nouns: ["Keyboard Case", "Smart Cover"] },
      { category: "Styluses", nouns: ["Stylus Pen"] },
    ],
  },
];

const DEVICE_BRANDS = [
  "Sonix",
  "Voltra",
  "Nimbus",
  "Apexa",
  "Kestrel",
  "Lumio",
  "Orbitron",
  "Zentra",
  "Corvid",
  "Halcyon",
];
const ACCESSORY_MAKERS = ["Armorly", "Cablex", "Gripo", "Tandem", "Fieldcraft", "Polaro"];
const ACCESSORY_ADJECTIVES = ["Slim", "Rugged", "Premium", "Compact", "Everyday", "Pro-Grade"];
// No suffix is a prefix of another, so no title can contain another title.
const SUFFIXES = ["Pro", "Lite", "Max", "Air", "Plus", "Mini", "Ultra", "One", "Neo", "Edge"];

export interface SyntheticData {
  items: Map<string, Item>;
  interactions: Interaction[];
}

function zipfWeights(n: number): number[] {
  return Array.from({ length: n }, (_, r) => 1 / Math.pow(r + 1, 0.8));
}

/** Generates the catalog and the shoppers' purchase sequences (before any protocol step). */
export function generateSynthetic(options: SyntheticOptions = {}): SyntheticData {
  const nUsers = options.users ?? 1500;
  const nItems = options.items ?? 600;
  const minLen = options.minLength ?? 8;
  const maxLen = options.maxLength ?? 20;
  const accessoryRate = options.accessoryRate ?? 0.55;
  const loyalty = options.brandLoyalty ?? 0.6;
  const seed = options.seed ?? DEFAULT_SEED;
  if (!(nItems >= 4 * FAMILIES.length))
    throw new Error(`synthetic catalog needs at least ${4 * FAMILIES.length} items, got ${nItems}`);
  if (!(minLen >= 1 && maxLen >= minLen))
    throw new Error(`synthetic sequence lengths need 1 <= minLength <= maxLength, got ${minLen}..${maxLen}`);

  const rng = new Rng(seed, "synthetic:catalog");
  const items = new Map<string, Item>();
  const titles = new Set<string>();
  // Which brands make which device family (each brand makes 3–5 families).
  const makers = FAMILIES.map(() => [] as string[]);
  for (const brand of DEVICE_BRANDS)
    for (const f of rng.sample(
      FAMILIES.map((_, i) => i),
      3 + rng.int(3),
    ))
      makers[f]!.push(brand);
  makers.forEach((m, f) => m.length === 0 && m.push(DEVICE_BRANDS[f % DEVICE_BRANDS.length]!));

  // devices[f][brand] and accessories[f][brand]: item ids in popularity order (first = most popular).
  const devices = FAMILIES.map(() => new Map<string, string[]>());
  const accessories = FAMILIES.map(() => new Map<string, string[]>());
  const addItem = (title: string, attributes: Item["attributes"]): string | undefined => {
    if (titles.has(title)) return undefined;
    titles.add(title);
    const id = `S${String(items.size + 1).padStart(5, "0")}`;
    items.set(id, { id, title, attributes });
    return id;
  };
  const nDevices = Math.round(nItems * 0.4);
  for (let attempts = 0; items.size < nItems && attempts < nItems * 50; attempts++) {
    const f = attempts % FAMILIES.length;
    const fam = FAMILIES[f]!;
    const wantDevice = items.size < nDevices;
    const brand = makers[f]![rng.int(makers[f]!.length)]!;
    const price = Math.round(fam.basePrice * (0.5 + rng.next()) * 100) / 100;
    if (wantDevice) {
      const title = `${brand} ${fam.adjectives[rng.int(fam.adjectives.length)]} ${fam.nouns[rng.int(fam.nouns.length)]} ${SUFFIXES[rng.int(SUFFIXES.length)]}`;
      const id = addItem(title, { category: fam.category, brand, kind: "device", price });
      if (id) (devices[f]!.get(brand) ?? devices[f]!.set(brand, []).get(brand)!).push(id);
    } else {
      const madeBrands = [...devices[f]!.keys()];
      if (madeBrands.length === 0) continue;
      const forBrand = madeBrands[rng.int(madeBrands.length)]!;
      const acc = fam.accessories[rng.int(fam.accessories.length)]!;
      const maker = rng.next() < 0.5 ? forBrand : ACCESSORY_MAKERS[rng.int(ACCESSORY_MAKERS.length)]!;
      const title = `${maker} ${ACCESSORY_ADJECTIVES[rng.int(ACCESSORY_ADJECTIVES.length)]} ${acc.nouns[rng.int(acc.nouns.length)]} for ${forBrand} ${fam.short}`;
      const accPrice = Math.round(fam.basePrice * 0.08 * (0.5 + rng.next()) * 100) / 100;
      const id = addItem(title, {
        category: acc.category,
        brand: maker,
        kind: "accessory",
        price: accPrice,
        forCategory: fam.category,
        forBrand,
      });
      if (id) (accessories[f]!.get(forBrand) ?? accessories[f]!.set(forBrand, []).get(forBrand)!).push(id);
    }
  }

  const interactions: Interaction[] = [];
  const start = Date.UTC(2020, 0, 1) / 1000;
  for (let u = 0; u < nUsers; u++) {
    const user = `U${String(u + 1).padStart(5, "0")}`;
    const ur = new Rng(seed, `synthetic:user:${u}`);
    const favourites = ur.sample(
      FAMILIES.map((_, i) => i),
      2 + ur.int(2),
    );
    const taste = FAMILIES.map((_, f) => (favourites.includes(f) ? 1 + 4 * ur.next() : 0.15));
    const favouriteBrand = DEVICE_BRANDS[ur.int(DEVICE_BRANDS.length)]!;
    const length = minLen + ur.int(maxLen - minLen + 1);
    const bought = new Set<string>();
    let current: { family: number; brand: string } | undefined;
    let time = start + ur.int(365 * 86400);
    const pick = (ids: readonly string[] | undefined): string | undefined => {
      const open = (ids ?? []).filter((id) => !bought.has(id));
      return open.length ? open[ur.weighted(zipfWeights(open.length))] : undefined;
    };
    for (let step = 0, tries = 0; step < length && tries < length * 20; tries++) {
      let item: string | undefined;
      if (current && ur.next() < accessoryRate) {
        item = pick(accessories[current.family]!.get(current.brand));
      }
      if (!item) {
        const f = ur.weighted(taste);
        const brands = [...devices[f]!.keys()];
        if (brands.length === 0) continue;
        const brand =
          brands.includes(favouriteBrand) && ur.next() < loyalty ? favouriteBrand : brands[ur.int(brands.length)]!;
        item = pick(devices[f]!.get(brand));
        if (item) current = { family: f, brand };
      }
      if (!item) continue;
      bought.add(item);
      time += 3600 + ur.int(30 * 86400);
      interactions.push({ user, item, time, order: interactions.length });
      step++;
    }
  }
  return { items, interactions };
}

/** Generates synthetic data and runs it through the data protocol, ready for `writeDataset`. */
export function prepareSynthetic(
  synthetic: SyntheticOptions = {},
  protocol: ProtocolOptions = {},
): PreparedData & { source: string } {
  const { items, interactions } = generateSynthetic(synthetic);
  const prepared = applyProtocol(interactions, items, { ...protocol, seed: protocol.seed ?? synthetic.seed });
  const o = { users: 1500, items: 600, minLength: 8, maxLength: 20, seed: DEFAULT_SEED, ...synthetic };
  return {
    ...prepared,
    source: `synthetic(users=${o.users}, items=${o.items}, length=${o.minLength}..${o.maxLength}, seed=${o.seed})`,
  };
}
