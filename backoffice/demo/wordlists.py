"""Word lists for the demo data set: names, places and browsers people really use.

Domains end in `.example` (RFC 2606) so no demo e-mail ever reaches a real host; logos are drawn (generator.generated_logo).
"""
from __future__ import annotations

# Country → weight. Most customers sit in the DACH region, France, the UK, the US and Denmark.
COUNTRY_WEIGHTS: dict[str, int] = {
    "CH": 22, "DE": 20, "AT": 8, "FR": 8, "GB": 10, "US": 12, "DK": 6,
    "NL": 3, "SE": 3, "IT": 3, "ES": 2, "BE": 1, "NO": 1, "PL": 1,
}

LANGUAGE_OF: dict[str, str] = {
    "CH": "de", "DE": "de", "AT": "de", "FR": "fr", "BE": "fr", "GB": "en", "US": "en",
    "DK": "da", "NO": "da", "SE": "sv", "NL": "nl", "IT": "it", "ES": "es", "PL": "pl",
}

FIRST_NAMES: dict[str, list[str]] = {
    "de": ["Anna", "Lukas", "Sophie", "Jonas", "Lea", "Noah", "Mia", "Elias", "Laura", "Felix",
           "Julia", "Maximilian", "Sarah", "Tobias", "Nina", "David", "Lena", "Simon", "Hannah",
           "Matthias", "Katharina", "Florian", "Jana", "Stefan", "Claudia", "Reto", "Urs",
           "Andrea", "Marco", "Jürg", "Käthi", "Thomas", "Sabine"],
    "fr": ["Camille", "Louis", "Chloé", "Hugo", "Manon", "Jules", "Léa", "Gabriel", "Inès",
           "Arthur", "Juliette", "Nathan", "Élodie", "Théo", "Margaux", "Antoine", "Céline",
           "Mathieu", "Amélie", "Rémi"],
    "en": ["Oliver", "Emma", "James", "Olivia", "William", "Ava", "Henry", "Isla", "Jack",
           "Charlotte", "Harry", "Amelia", "Ethan", "Grace", "Michael", "Emily", "Daniel",
           "Chloe", "Benjamin", "Madison", "Ryan", "Hannah", "Tyler", "Zoe"],
    "da": ["Mads", "Freja", "Rasmus", "Ida", "Magnus", "Sofie", "Frederik", "Emma", "Mikkel",
           "Anne", "Søren", "Mette", "Jakob", "Signe", "Anders", "Astrid"],
    "sv": ["Erik", "Elsa", "Lars", "Maja", "Oskar", "Ebba", "Johan", "Alva", "Nils", "Saga",
           "Karin", "Gustav"],
    "nl": ["Daan", "Sanne", "Bram", "Fleur", "Sem", "Lotte", "Thijs", "Eva", "Ruben", "Anouk",
           "Joost", "Femke"],
    "it": ["Luca", "Giulia", "Marco", "Chiara", "Matteo", "Francesca", "Alessandro", "Sofia",
           "Davide", "Martina", "Giorgio", "Elena"],
    "es": ["Pablo", "Lucía", "Javier", "Carmen", "Alejandro", "María", "Diego", "Paula",
           "Sergio", "Elena", "Álvaro", "Marta"],
    "pl": ["Jakub", "Zuzanna", "Kacper", "Julia", "Mateusz", "Maja", "Piotr", "Aleksandra",
           "Tomasz", "Katarzyna"],
}

LAST_NAMES: dict[str, list[str]] = {
    "de": ["Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Schneider", "Fischer",
           "Becker", "Wagner", "Hofmann", "Schulz", "Koch", "Bauer", "Richter", "Klein", "Wolf",
           "Brunner", "Gerber", "Baumann", "Frei", "Zimmermann", "Steiner", "Moser", "Graf",
           "Gruber", "Pichler", "Lehmann", "Krüger", "Vogel"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "Fontaine",
           "Rousseau", "Blanc", "Girard", "Mercier"],
    "en": ["Smith", "Johnson", "Williams", "Brown", "Jones", "Taylor", "Davies", "Wilson",
           "Evans", "Thomas", "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White",
           "Hughes", "Edwards", "Green", "Hall", "Miller", "Davis", "Anderson", "Clark"],
    "da": ["Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen",
           "Sørensen", "Rasmussen", "Jørgensen", "Madsen", "Kristensen"],
    "sv": ["Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
           "Persson", "Svensson", "Gustafsson"],
    "nl": ["de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser",
           "Smit", "Meijer", "de Boer", "Mulder", "Bos"],
    "it": ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
           "Marino", "Greco", "Bruno", "Gallo"],
    "es": ["García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Martín", "Jiménez", "Ruiz"],
    "pl": ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski",
           "Zieliński", "Szymański", "Woźniak"],
}

COMPANY_FIRST = [
    "Alpine", "Nordic", "Blue", "Bright", "Summit", "Cedar", "Granite", "Harbor", "Lumen",
    "Vertex", "Pixel", "Quantum", "River", "Silver", "Swift", "Atlas", "Beacon", "Cobalt",
    "Delta", "Ember", "Falcon", "Glacier", "Horizon", "Iris", "Juniper", "Kestrel", "Linden",
    "Meridian", "Nova", "Orbit", "Pine", "Quartz", "Rhine", "Sage", "Tundra", "Vista", "Willow",
    "Zephyr", "Aare", "Bergblick", "Edelweiss", "Fjord", "Loire", "Thames", "Danube", "Helix",
    "Lakeside", "Northwind", "Oakridge", "Polar", "Redwood", "Sunrise", "Tessin", "Matterhorn",
    "Limmat", "Seeland", "Elbe", "Isar", "Bodensee", "Jura", "Copenhagen", "Aurora", "Solstice",
]
COMPANY_SECOND = [
    "Labs", "Analytics", "Software", "Systems", "Digital", "Health", "Logistics", "Studio",
    "Works", "Consulting", "Media", "Robotics", "Energy", "Foods", "Finance", "Learning", "Cloud",
    "Data", "Design", "Security", "Travel", "Legal", "Technik", "Solutions", "Partners",
    "Engineering", "Ventures", "Mobility", "Bio", "Retail", "Architects", "Insights", "Networks",
]
LEGAL_FORMS: dict[str, list[str]] = {
    "CH": ["AG", "GmbH", "SA", "Sàrl"], "DE": ["GmbH", "AG", "GmbH & Co. KG", "UG"],
    "AT": ["GmbH", "AG", "OG"], "FR": ["SAS", "SARL", "SA"], "BE": ["SRL", "SA", "BV"],
    "GB": ["Ltd", "Ltd", "LLP", "plc"], "US": ["Inc.", "LLC", "Corp."], "DK": ["ApS", "A/S"],
    "NO": ["AS"], "SE": ["AB"], "NL": ["B.V."], "IT": ["S.r.l.", "S.p.A."], "ES": ["S.L.", "S.A."],
    "PL": ["sp. z o.o."],
}

CITIES: dict[str, list[tuple[str, str]]] = {
    "CH": [("Zürich", "8001"), ("Bern", "3011"), ("Basel", "4051"), ("Lausanne", "1003"),
           ("Genève", "1201"), ("Luzern", "6003"), ("St. Gallen", "9000"), ("Winterthur", "8400"),
           ("Zug", "6300"), ("Lugano", "6900")],
    "DE": [("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095"), ("Köln", "50667"),
           ("Frankfurt am Main", "60311"), ("Stuttgart", "70173"), ("Leipzig", "04109"),
           ("Düsseldorf", "40213")],
    "AT": [("Wien", "1010"), ("Graz", "8010"), ("Linz", "4020"), ("Salzburg", "5020"),
           ("Innsbruck", "6020")],
    "FR": [("Paris", "75002"), ("Lyon", "69002"), ("Marseille", "13001"), ("Toulouse", "31000"),
           ("Nantes", "44000"), ("Bordeaux", "33000")],
    "BE": [("Bruxelles", "1000"), ("Liège", "4000"), ("Namur", "5000")],
    "GB": [("London", "EC2A 4NE"), ("Manchester", "M1 1AE"), ("Bristol", "BS1 4DJ"),
           ("Edinburgh", "EH1 1YZ"), ("Leeds", "LS1 4AP")],
    "US": [("San Francisco", "94105"), ("New York", "10001"), ("Austin", "78701"),
           ("Boston", "02110"), ("Seattle", "98101"), ("Chicago", "60601")],
    "DK": [("København", "1050"), ("Aarhus", "8000"), ("Odense", "5000"), ("Aalborg", "9000")],
    "NO": [("Oslo", "0150"), ("Bergen", "5003")],
    "SE": [("Stockholm", "111 51"), ("Göteborg", "411 03"), ("Malmö", "211 20")],
    "NL": [("Amsterdam", "1012 JS"), ("Rotterdam", "3011 AD"), ("Utrecht", "3511 AA")],
    "IT": [("Milano", "20121"), ("Roma", "00184"), ("Torino", "10121"), ("Bologna", "40121")],
    "ES": [("Madrid", "28013"), ("Barcelona", "08002"), ("Valencia", "46002")],
    "PL": [("Warszawa", "00-001"), ("Kraków", "31-001"), ("Wrocław", "50-001")],
}

STREETS: dict[str, list[str]] = {
    "de": ["Bahnhofstrasse", "Hauptstrasse", "Seestrasse", "Industriestrasse", "Marktgasse",
           "Schillerstraße", "Goethestraße", "Friedrichstraße", "Lindenallee", "Mariahilfer Straße"],
    "fr": ["rue de la République", "avenue Victor Hugo", "boulevard Haussmann", "rue de Rivoli",
           "rue du Faubourg Saint-Antoine", "quai des Chartrons"],
    "en": ["High Street", "Station Road", "Main Street", "Market Street", "Oak Avenue",
           "Broadway", "Mission Street", "Congress Avenue"],
    "da": ["Vesterbrogade", "Nørregade", "Strøget", "Østergade"],
    "sv": ["Drottninggatan", "Kungsgatan", "Storgatan"],
    "nl": ["Keizersgracht", "Damrak", "Coolsingel"],
    "it": ["Via Roma", "Corso Buenos Aires", "Via Garibaldi"],
    "es": ["Calle Mayor", "Gran Vía", "Passeig de Gràcia"],
    "pl": ["ulica Marszałkowska", "ulica Floriańska", "ulica Świdnicka"],
}
NUMBER_FIRST = {"fr", "en"}  # "12 rue de Rivoli", "221 High Street"

# Public IPv4 /8s and IPv6 /32s of consumer and business providers, by country.
IPV4_PREFIXES: dict[str, list[int]] = {
    "CH": [31, 46, 62, 83, 85, 178, 195, 213], "DE": [79, 84, 87, 91, 93, 217],
    "AT": [77, 80, 89, 193], "FR": [82, 86, 90, 92, 109], "BE": [81, 94, 109],
    "GB": [2, 51, 81, 86, 90], "US": [24, 67, 73, 98, 104, 173], "DK": [5, 80, 87, 188],
    "NO": [46, 84, 178], "SE": [78, 83, 90], "NL": [77, 84, 145], "IT": [79, 93, 151],
    "ES": [79, 83, 88], "PL": [31, 83, 89],
}
IPV6_PREFIXES: dict[str, list[str]] = {
    "CH": ["2a02:1210", "2a02:aa10"], "DE": ["2003:e6", "2a02:8108"], "AT": ["2a02:8388"],
    "FR": ["2a01:cb00", "2a01:e0a"], "GB": ["2a00:23c7", "2a02:c7c"], "US": ["2600:1700", "2601:640"],
    "DK": ["2a05:f6c7"], "NL": ["2a02:a442"],
}

DESKTOP_AGENTS = [
    # Chrome on Windows and macOS
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"),
    # Edge and Opera (both Chromium-based)
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    # Firefox
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.7; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    # Safari
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.2 Safari/605.1.15"),
]
MOBILE_AGENTS = [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.81 Mobile Safari/537.36"),
]

ASCII_FOLD = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "è": "e", "ê": "e", "ë": "e",
    "à": "a", "â": "a", "á": "a", "ç": "c", "î": "i", "ï": "i", "í": "i", "ô": "o", "ó": "o",
    "û": "u", "ù": "u", "ú": "u", "ñ": "n", "ø": "oe", "æ": "ae", "å": "aa", "ś": "s", "ń": "n",
    "ł": "l", "ź": "z", "ż": "z", "ą": "a", "ę": "e", "ć": "c", "Á": "a", "É": "e", "Ø": "oe",
})


def slug(text: str) -> str:
    folded = text.lower().translate(ASCII_FOLD)
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())
