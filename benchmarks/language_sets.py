"""Sentences with exact text in other languages, spoken by espeak-ng (the languages
benchmark and tests build their audio from these; see ``tests/synth.py``'s ``espeak``).

Each language has six everyday sentences (a greeting, travel, weather, a household command,
a question, a number) and their English translation, for scoring ``task = "translate"``.
"""

from __future__ import annotations

#: language code -> [(sentence, English translation)].
SENTENCES: dict[str, list[tuple[str, str]]] = {
    "de": [
        ("Guten Morgen, wie geht es dir heute?", "Good morning, how are you today?"),
        (
            "Ich möchte morgen mit dem Zug nach Berlin fahren.",
            "I would like to take the train to Berlin tomorrow.",
        ),
        ("Das Wetter ist heute sehr schön und warm.", "The weather is very nice and warm today."),
        (
            "Kannst du bitte das Licht in der Küche ausschalten?",
            "Can you please turn off the light in the kitchen?",
        ),
        ("Wann beginnt der Film heute Abend?", "When does the film start tonight?"),
        ("Wir haben drei Kinder und einen Hund.", "We have three children and a dog."),
    ],
    "fr": [
        ("Bonjour, comment allez-vous aujourd'hui?", "Hello, how are you today?"),
        (
            "Je voudrais prendre le train pour Paris demain.",
            "I would like to take the train to Paris tomorrow.",
        ),
        ("Il fait très beau et chaud ce matin.", "The weather is very nice and warm this morning."),
        (
            "Peux-tu éteindre la lumière de la cuisine, s'il te plaît?",
            "Can you turn off the kitchen light, please?",
        ),
        ("À quelle heure commence le film ce soir?", "What time does the film start tonight?"),
        ("Nous avons trois enfants et un chien.", "We have three children and a dog."),
    ],
    "es": [
        ("Buenos días, ¿cómo estás hoy?", "Good morning, how are you today?"),
        ("Quiero viajar a Madrid en tren mañana.", "I want to travel to Madrid by train tomorrow."),
        ("El tiempo es muy agradable esta tarde.", "The weather is very pleasant this afternoon."),
        ("Por favor, apaga la luz de la cocina.", "Please turn off the kitchen light."),
        ("¿A qué hora empieza la película esta noche?", "What time does the movie start tonight?"),
        ("Tenemos tres hijos y un perro.", "We have three children and a dog."),
    ],
    "it": [
        ("Buongiorno, come stai oggi?", "Good morning, how are you today?"),
        ("Domani voglio andare a Roma in treno.", "Tomorrow I want to go to Rome by train."),
        ("Oggi il tempo è molto bello e caldo.", "Today the weather is very nice and warm."),
        ("Per favore, spegni la luce in cucina.", "Please turn off the light in the kitchen."),
        ("A che ora inizia il film stasera?", "What time does the film start tonight?"),
        ("Abbiamo tre figli e un cane.", "We have three children and a dog."),
    ],
    "nl": [
        ("Goedemorgen, hoe gaat het vandaag met je?", "Good morning, how are you today?"),
        (
            "Ik wil morgen met de trein naar Amsterdam.",
            "I want to go to Amsterdam by train tomorrow.",
        ),
        ("Het weer is vandaag heel mooi en warm.", "The weather is very nice and warm today."),
        (
            "Wil je alsjeblieft het licht in de keuken uitdoen?",
            "Will you please turn off the light in the kitchen?",
        ),
        ("Hoe laat begint de film vanavond?", "What time does the film start tonight?"),
        ("We hebben drie kinderen en een hond.", "We have three children and a dog."),
    ],
}
