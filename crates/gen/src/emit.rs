//! Serialisation of scheduled events as normalized NDJSON lines or Cloud API
//! webhook bodies, written straight into a byte buffer.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use crate::fmt::{hex_into, mix, push_rfc3339, push_u64, push_wamid};
use crate::sim::{
    CATEGORIES, CATEGORIES_UP, DELIVERED, ERRORS, Ev, FAILED, IN, O_BUSINESS, O_NONE, O_REFERRAL,
    O_USER, OUT, READ, SENT, TEMPLATES_MSG, World, conversation_len,
};

static FIRST: &[&str] = &[
    "Ana", "João", "Priya", "Rahul", "Siti", "Budi", "María", "José", "Chinedu", "Aisha", "Fatima",
    "Mohammed", "Carlos", "Lucía", "Ahmed", "Emeka", "Ngozi", "Arjun", "Dewi", "Juan", "Camila",
    "Sheena", "Olivia", "Mehmet", "Nguyen", "Kwame", "Amara", "Sofia", "Diego", "Yuki",
];
static LAST: &[&str] = &[
    "Silva",
    "Santos",
    "Sharma",
    "Patel",
    "Wijaya",
    "Hernández",
    "García",
    "Okafor",
    "Adeyemi",
    "Khan",
    "Rodríguez",
    "Nelson",
    "Pérez",
    "Kumar",
    "Lestari",
    "Mensah",
    "Yılmaz",
    "Tran",
    "Costa",
    "López",
    "Ibrahim",
    "Gómez",
    "Ali",
    "Oliveira",
];
static TEXTS: &[&str] = &[
    "Hi",
    "Hello, I need help with my order",
    "Does it come in another color?",
    "Can I get more info about this?",
    "What are your opening hours?",
    "I want to track my delivery",
    "Thanks!",
    "ok",
    "Is this still available?",
    "How much is the shipping to my city?",
    "Quiero saber el precio",
    "Olá, tudo bem? Gostaria de fazer um pedido",
    "Mera order kab aayega?",
    "Halo kak, masih ada stok?",
    "👍",
    "Can I speak to an agent please",
    "My payment failed, what should I do?",
    "Yes",
    "No, thank you",
    "I did not receive the code",
];
static BUTTONS: &[&str] = &["Yes", "No", "Talk to an agent", "Track order"];
static HEADLINES: &[&str] = &[
    "Chat with us",
    "Summer Succulents are here!",
    "Get 20% off today",
    "Book a free demo",
];
static AD_BODIES: &[&str] = &[
    "Message us on WhatsApp to order",
    "New arrivals every week. Ask us anything!",
    "Limited offer: tap to chat and claim your discount",
    "Our team answers in minutes",
];
static OFFSETS: &[i32] = &[
    330, -180, 420, 60, -300, 180, 540, -360, 345, 480, -240, 120, 0,
];

pub(crate) struct Emitter<'w> {
    w: &'w World,
    rng: Pcg64,
}

impl<'w> Emitter<'w> {
    pub(crate) fn new(w: &'w World, seed: u64) -> Self {
        Emitter {
            w,
            rng: Pcg64::seed_from_u64(seed ^ 0x454D_4954_5445_5200),
        }
    }

    #[inline]
    fn pm(&mut self) -> u32 {
        self.rng.random_range(0..1000u32)
    }

    /// A `ts` value in one of the accepted shapes (RFC 3339 with `Z` or an
    /// offset, with or without sub-seconds; Unix seconds as number, decimal or
    /// digit string).
    fn ts_any(&mut self, b: &mut Vec<u8>, ms: u64) {
        let r = self.pm();
        let rfc = |b: &mut Vec<u8>, off: i32, frac: u8, zulu: bool| {
            b.push(b'"');
            push_rfc3339(b, ms, off, frac, zulu);
            b.push(b'"');
        };
        match r {
            0..350 => rfc(b, 0, 0, true),
            350..450 => rfc(b, 0, 3, true),
            450..470 => rfc(b, 0, 6, true),
            470..480 => rfc(b, 0, 9, true),
            480..540 => {
                let off = OFFSETS[self.rng.random_range(0..OFFSETS.len())];
                rfc(b, off, 0, false);
            }
            540..560 => {
                let off = OFFSETS[self.rng.random_range(0..OFFSETS.len())];
                rfc(b, off, 3, false);
            }
            560..840 => push_u64(b, ms / 1000),
            840..985 => {
                b.push(b'"');
                push_u64(b, ms / 1000);
                b.push(b'"');
            }
            _ => {
                push_u64(b, ms / 1000);
                b.push(b'.');
                crate::fmt::push_padded(b, ms % 1000, 3);
            }
        }
    }

    /// Cloud API timestamps: Unix seconds, a string as Meta sends them
    /// (sometimes a number, which is accepted too).
    fn ts_cloud(&mut self, b: &mut Vec<u8>, ms: u64) {
        if self.pm() < 920 {
            b.push(b'"');
            push_u64(b, ms / 1000);
            b.push(b'"');
        } else {
            push_u64(b, ms / 1000);
        }
    }

    fn user(&self, e: &Ev) -> u64 {
        self.w.users[e.user as usize]
    }

    fn wamid(&self, b: &mut Vec<u8>, e: &Ev) {
        push_wamid(b, self.user(e), e.msg, e.kind == IN, self.w.key);
    }

    /// One normalized NDJSON line (with its newline).
    pub(crate) fn ndjson(&mut self, b: &mut Vec<u8>, e: &Ev) {
        let phone = &self.w.phones[e.phone as usize];
        b.extend_from_slice(match e.kind {
            IN => b"{\"type\":\"inbound\",\"id\":\"",
            OUT => b"{\"type\":\"outbound\",\"id\":\"",
            _ => b"{\"type\":\"status\",\"id\":\"",
        });
        self.wamid(b, e);
        b.extend_from_slice(b"\",\"waba\":\"");
        push_u64(b, self.w.wabas[phone.waba as usize]);
        b.extend_from_slice(b"\",\"phone\":\"");
        push_u64(b, phone.id);
        b.extend_from_slice(b"\",\"user\":\"");
        push_u64(b, self.user(e));
        b.extend_from_slice(b"\",\"ts\":");
        self.ts_any(b, e.t);
        match e.kind {
            IN => {
                if e.aux > 0 {
                    b.extend_from_slice(b",\"referral\":");
                    self.referral(b, phone.waba, e.aux - 1);
                }
            }
            OUT => {
                if e.aux > 0 {
                    let (name, cat) = TEMPLATES_MSG[(e.aux - 1) as usize];
                    b.extend_from_slice(b",\"template\":{\"name\":\"");
                    b.extend_from_slice(name.as_bytes());
                    b.extend_from_slice(b"\",\"category\":\"");
                    let cats = if self.pm() < 50 {
                        CATEGORIES_UP
                    } else {
                        CATEGORIES
                    };
                    b.extend_from_slice(cats[cat as usize].as_bytes());
                    b.extend_from_slice(b"\"}");
                }
            }
            _ => {
                b.extend_from_slice(b",\"status\":\"");
                b.extend_from_slice(status_name(e.status));
                b.push(b'"');
                if e.origin != O_NONE {
                    b.extend_from_slice(b",\"meta\":{\"conversation_id\":\"");
                    self.conversation_id(b, e);
                    b.extend_from_slice(b"\",\"origin\":\"");
                    b.extend_from_slice(origin_name(e.origin));
                    b.push(b'"');
                    if e.expiry {
                        b.extend_from_slice(b",\"expires\":");
                        push_u64(b, (e.conv + conversation_len(e.origin, e.conv)) / 1000);
                    }
                    b.extend_from_slice(if e.origin == O_REFERRAL {
                        b",\"billable\":false,\"category\":\""
                    } else {
                        b",\"billable\":true,\"category\":\""
                    });
                    b.extend_from_slice(origin_name(e.origin));
                    b.extend_from_slice(b"\",\"pricing_model\":\"CBP\"}");
                }
            }
        }
        b.extend_from_slice(b"}\n");
    }

    fn conversation_id(&self, b: &mut Vec<u8>, e: &Ev) {
        let base = self.user(e) ^ self.w.key ^ e.conv.rotate_left(17);
        let mut h = [0u8; 32];
        hex_into(&mut h[..16], mix(base), false);
        hex_into(&mut h[16..], mix(base ^ 0xA076_1D64_78BD_642F), false);
        b.extend_from_slice(&h);
    }

    fn referral(&mut self, b: &mut Vec<u8>, waba: u32, ad: u8) {
        let h = mix(self.w.wabas[waba as usize] ^ u64::from(ad) ^ self.w.key);
        let ad = ad as usize;
        b.extend_from_slice(b"{\"source_url\":\"https://fb.me/");
        let mut code = [0u8; 9];
        let mut x = h;
        for c in &mut code {
            *c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                [(x % 62) as usize];
            x /= 62;
        }
        b.extend_from_slice(&code);
        b.extend_from_slice(b"\",\"source_id\":\"");
        push_u64(b, 120_200_000_000_000_000 + h % 100_000_000_000_000);
        b.extend_from_slice(if ad == 3 {
            b"\",\"source_type\":\"post\",\"headline\":\""
        } else {
            b"\",\"source_type\":\"ad\",\"headline\":\""
        });
        b.extend_from_slice(HEADLINES[ad % HEADLINES.len()].as_bytes());
        b.extend_from_slice(b"\",\"body\":\"");
        b.extend_from_slice(AD_BODIES[ad % AD_BODIES.len()].as_bytes());
        let image = ad.is_multiple_of(2);
        if image {
            b.extend_from_slice(
                b"\",\"media_type\":\"image\",\"image_url\":\"https://scontent.xx.fbcdn.net/v/t45.1600-4/",
            );
        } else {
            b.extend_from_slice(
                b"\",\"media_type\":\"video\",\"video_url\":\"https://video.xx.fbcdn.net/v/t42.1790-2/",
            );
        }
        push_u64(b, h % 1_000_000_000_000);
        b.extend_from_slice(if image { b"_n.jpg\"}" } else { b"_n.mp4\"}" });
    }

    fn envelope_head(&self, b: &mut Vec<u8>, phone: u32) {
        let p = &self.w.phones[phone as usize];
        b.extend_from_slice(b"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"");
        push_u64(b, self.w.wabas[p.waba as usize]);
        b.extend_from_slice(b"\",\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"");
        push_u64(b, p.display);
        b.extend_from_slice(b"\",\"phone_number_id\":\"");
        push_u64(b, p.id);
        b.extend_from_slice(b"\"},");
    }

    const ENVELOPE_TAIL: &'static [u8] = b"]},\"field\":\"messages\"}]}]}\n";

    /// A Cloud API body with one user message.
    pub(crate) fn cloud_inbound(&mut self, b: &mut Vec<u8>, e: &Ev) {
        self.envelope_head(b, e.phone);
        let user = self.user(e);
        let h = mix(user ^ self.w.key);
        b.extend_from_slice(b"\"contacts\":[{\"profile\":{\"name\":\"");
        b.extend_from_slice(FIRST[(h % FIRST.len() as u64) as usize].as_bytes());
        b.push(b' ');
        b.extend_from_slice(LAST[((h >> 20) % LAST.len() as u64) as usize].as_bytes());
        b.extend_from_slice(b"\"},\"wa_id\":\"");
        push_u64(b, user);
        b.extend_from_slice(b"\"}],\"messages\":[{");
        if e.aux > 0 {
            b.extend_from_slice(b"\"referral\":");
            let waba = self.w.phones[e.phone as usize].waba;
            self.referral(b, waba, e.aux - 1);
            b.push(b',');
        }
        b.extend_from_slice(b"\"from\":\"");
        push_u64(b, user);
        b.extend_from_slice(b"\",\"id\":\"");
        self.wamid(b, e);
        b.extend_from_slice(b"\",\"timestamp\":");
        self.ts_cloud(b, e.t);
        if e.aux == 0 && self.pm() < 60 {
            b.extend_from_slice(
                b",\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{\"id\":\"btn_",
            );
            let k = self.rng.random_range(0..BUTTONS.len());
            push_u64(b, k as u64);
            b.extend_from_slice(b"\",\"title\":\"");
            b.extend_from_slice(BUTTONS[k].as_bytes());
            b.extend_from_slice(b"\"}},\"type\":\"interactive\"}");
        } else {
            b.extend_from_slice(b",\"text\":{\"body\":\"");
            let k = self.rng.random_range(0..TEXTS.len());
            b.extend_from_slice(TEXTS[k].as_bytes());
            b.extend_from_slice(b"\"},\"type\":\"text\"}");
        }
        b.extend_from_slice(Self::ENVELOPE_TAIL);
    }

    /// A Cloud API body with the statuses `evs` (all of one phone).
    pub(crate) fn cloud_statuses(&mut self, b: &mut Vec<u8>, evs: &[Ev]) {
        let Some(first) = evs.first() else {
            return;
        };
        self.envelope_head(b, first.phone);
        b.extend_from_slice(b"\"statuses\":[");
        for (i, e) in evs.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            b.extend_from_slice(b"{\"id\":\"");
            self.wamid(b, e);
            b.extend_from_slice(b"\",\"status\":\"");
            b.extend_from_slice(status_name(e.status));
            b.extend_from_slice(b"\",\"timestamp\":");
            self.ts_cloud(b, e.t);
            b.extend_from_slice(b",\"recipient_id\":\"");
            push_u64(b, self.user(e));
            b.push(b'"');
            if e.origin != O_NONE {
                b.extend_from_slice(b",\"conversation\":{\"id\":\"");
                self.conversation_id(b, e);
                b.push(b'"');
                if e.expiry {
                    b.extend_from_slice(b",\"expiration_timestamp\":");
                    self.ts_cloud(b, e.conv + conversation_len(e.origin, e.conv));
                }
                b.extend_from_slice(b",\"origin\":{\"type\":\"");
                b.extend_from_slice(origin_name(e.origin));
                b.extend_from_slice(if e.origin == O_REFERRAL {
                    b"\"}},\"pricing\":{\"billable\":false,\"pricing_model\":\"CBP\",\"category\":\""
                } else {
                    b"\"}},\"pricing\":{\"billable\":true,\"pricing_model\":\"CBP\",\"category\":\""
                });
                b.extend_from_slice(origin_name(e.origin));
                b.extend_from_slice(b"\"}");
            }
            if e.status == FAILED {
                let (code, title) = ERRORS[e.aux as usize % ERRORS.len()];
                b.extend_from_slice(b",\"errors\":[{\"code\":");
                push_u64(b, u64::from(code));
                b.extend_from_slice(b",\"title\":\"");
                b.extend_from_slice(title.as_bytes());
                b.extend_from_slice(b"\"}]");
            }
            b.push(b'}');
        }
        b.extend_from_slice(Self::ENVELOPE_TAIL);
    }
}

fn status_name(s: u8) -> &'static [u8] {
    match s {
        SENT => b"sent",
        DELIVERED => b"delivered",
        READ => b"read",
        _ => b"failed",
    }
}

fn origin_name(o: u8) -> &'static [u8] {
    match o {
        O_USER => b"user_initiated",
        O_BUSINESS => b"business_initiated",
        O_REFERRAL => b"referral_conversion",
        _ => b"",
    }
}
