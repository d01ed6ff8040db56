package demo

// category is a product category with the nouns used to name its products
// and the price range of those products in whole dollars.
type category struct {
	name     string
	nouns    []string
	minPrice int
	maxPrice int
}

var categories = []category{
	{"electronics", []string{"Wireless Earbuds", "Bluetooth Speaker", "USB-C Hub", "Smart Watch", "Portable Charger", "Noise-Cancelling Headphones", "Mechanical Keyboard", "HD Webcam"}, 19, 349},
	{"home", []string{"Ceramic Mug", "Throw Blanket", "Desk Lamp", "Scented Candle", "Cast Iron Skillet", "French Press", "Linen Pillowcase", "Wall Clock"}, 9, 129},
	{"books", []string{"Cookbook", "Field Guide", "Travel Journal", "Sketchbook", "Poetry Collection", "Atlas", "Novel", "Puzzle Book"}, 7, 49},
	{"outdoors", []string{"Trail Backpack", "Camping Lantern", "Water Bottle", "Hammock", "Rain Jacket", "Trekking Poles", "Sleeping Bag", "Camp Stove"}, 14, 249},
	{"toys", []string{"Building Blocks", "Puzzle Set", "Plush Bear", "Kite", "Wooden Train", "Board Game", "Yo-Yo", "Science Kit"}, 5, 79},
	{"beauty", []string{"Face Serum", "Lip Balm", "Hand Cream", "Shampoo Bar", "Sunscreen", "Body Wash", "Hair Oil", "Clay Mask"}, 6, 59},
	{"sports", []string{"Yoga Mat", "Jump Rope", "Resistance Bands", "Running Socks", "Tennis Balls", "Foam Roller", "Dumbbell Pair", "Cycling Gloves"}, 8, 149},
	{"grocery", []string{"Coffee Beans", "Green Tea", "Olive Oil", "Dark Chocolate", "Maple Syrup", "Trail Mix", "Hot Sauce", "Honey Jar"}, 4, 39},
}

var productBrands = []string{
	"Aurora", "Summit", "Nimbus", "Cedar", "Pioneer", "Atlas", "Lumen", "Harbor",
	"Vertex", "Willow", "Ember", "Juniper", "Orbit", "Sable", "Tidal", "Quarry",
}

var firstNames = []string{
	"Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken",
	"Frances", "Edsger", "Radia", "Donald", "Hedy", "Tim", "Katherine", "Guido",
	"Sophie", "John", "Mary", "Rob", "Anita", "Bjarne", "Jean", "Niklaus",
	"Shafi", "Leslie", "Yukihiro", "Carol", "Ivan", "Lynn",
}

var lastNames = []string{
	"Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
	"Allen", "Dijkstra", "Perlman", "Knuth", "Lamarr", "Berners-Lee", "Johnson", "Rossum",
	"Wilson", "McCarthy", "Kenneth", "Pike", "Borg", "Stroustrup", "Sammet", "Wirth",
	"Goldwasser", "Lamport", "Matsumoto", "Shaw", "Sutherland", "Conway",
}

var countries = []string{"US", "GB", "DE", "FR", "CA", "AU", "JP", "BR", "IN", "NL", "SE", "ES"}

// tiers lists the user tiers with their cumulative weights out of 100.
var tiers = []struct {
	name       string
	cumulative int
}{{"bronze", 50}, {"silver", 80}, {"gold", 95}, {"platinum", 100}}
