/**
 * HTTP-date parsing (RFC 9110 §5.6.7): IMF-fixdate, plus the obsolete RFC 850 and asctime forms
 * that recipients must still accept. Parsed by hand because `Date.parse` is lenient with garbage
 * and reads asctime (which has no zone) as local time.
 */

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
const IMF_FIXDATE = new RegExp(`^[A-Z][a-z]{2}, (\\d{2}) ([A-Z][a-z]{2}) (\\d{4}) ${TIME} GMT$`);
const RFC_850 = new RegExp(`^[A-Z][a-z]+, (\\d{2})-([A-Z][a-z]{2})-(\\d{2}) ${TIME} GMT$`);
const ASCTIME = new RegExp(`^[A-Z][a-z]{2} ([A-Z][a-z]{2}) ([ \\d]\\d) ${TIME} (\\d{4})$`);

interface Parts {
  year: number;
  month: string;
  day: string;
  hh: string;
  mm: string;
  ss: string;
}

const toMs = ({ year, month, day, hh, mm, ss }: Parts): number | undefined => {
  const m = MONTHS.indexOf(month);
  if (m < 0) return undefined;
  const ms = Date.UTC(year, m, Number(day), Number(hh), Number(mm), Number(ss));
  // Reject impossible dates (Feb 31, 25:00) that Date.UTC would silently roll over.
  const d = new Date(ms);
  return d.getUTCDate() === Number(day) && d.getUTCHours() === Number(hh) && Number(mm) < 60 && Number(ss) < 61 ? ms : undefined;
};

/** RFC 850 two-digit years: the most recent such year not more than 50 years ahead of `now`. */
const fullYear = (yy: number, now: Date): number => {
  const current = now.getUTCFullYear();
  const candidate = current - (current % 100) + yy;
  return candidate > current + 50 ? candidate - 100 : candidate;
};

/** Milliseconds since the epoch of an HTTP-date, or undefined when it is not one. */
export const parseHttpDate = (value: string, now: Date): number | undefined => {
  let m = IMF_FIXDATE.exec(value);
  if (m) return toMs({ day: m[1]!, month: m[2]!, year: Number(m[3]), hh: m[4]!, mm: m[5]!, ss: m[6]! });
  m = RFC_850.exec(value);
  if (m) return toMs({ day: m[1]!, month: m[2]!, year: fullYear(Number(m[3]), now), hh: m[4]!, mm: m[5]!, ss: m[6]! });
  m = ASCTIME.exec(value);
  if (m) return toMs({ month: m[1]!, day: m[2]!.trim(), hh: m[3]!, mm: m[4]!, ss: m[5]!, year: Number(m[6]) });
  return undefined;
};
